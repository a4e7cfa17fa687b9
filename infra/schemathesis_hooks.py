"""schemathesis hooks for infra/schemathesis.sh (loaded through SCHEMATHESIS_HOOKS).

A booking's stay obeys rules JSON Schema cannot state: check_out is 1 to 30 nights after
check_in, there are one to four guests per room, and the currency is a real ISO 4217 code
rather than any three capitals. Left alone, almost every generated create is a 422, so the
stateful phase never gets a booking id to read, modify and cancel.

This hook repairs only values that already satisfy the schema, so a body generated to be
invalid (a wrong type, a malformed date, a missing field) stays invalid and still tests
the refusals; one body in four is left as generated, so schema-valid bodies that break a
cross-field rule are still sent and must still be refused with 422. The choice is a hash
of the body, so a seeded run is repeatable.

Reads are served from the consumers' projection, which trails a 202 by design; a read of a
booking this run just wrote waits until half a second has passed since the write, so the
sequence reads what the consumer made of it (200, with the booking's status) rather than
a 404 that only says the consumer had no time yet.
"""

import datetime
import hashlib
import json
import re
import time

import schemathesis

STAY_OPERATIONS = {("POST", "/v1/bookings"), ("POST", "/v1/bookings/{id}/modify")}
CURRENCIES = ["EUR", "USD", "GBP", "CHF", "JPY", "SEK"]
BOOKING_MUTATIONS = STAY_OPERATIONS | {("POST", "/v1/bookings/{id}/cancel")}
SETTLE_SECONDS = 0.5
# booking id -> when this run last had a mutation of it accepted
_WRITTEN = {}
DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def _date(value):
    if not isinstance(value, str) or not DATE.match(value):
        return None
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        return None


def _int(value):
    # JSON Schema counts 2.0 as an integer, and so does the ingress.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@schemathesis.hook("map_body")
def booking_rules_the_schema_cannot_state(context, body):
    operation = context.operation
    if operation is None or (operation.method.upper(), operation.path) not in STAY_OPERATIONS:
        return body
    if not isinstance(body, dict):
        return body
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).digest()
    if digest[0] % 4 == 0:
        return body
    body = dict(body)
    check_in, check_out = _date(body.get("check_in")), _date(body.get("check_out"))
    if check_in is not None and check_out is not None:
        nights = 1 + digest[1] % 30
        try:
            body["check_out"] = (check_in + datetime.timedelta(days=nights)).isoformat()
        except OverflowError:
            pass
    rooms, guests = _int(body.get("rooms")), _int(body.get("guests"))
    if rooms is not None and guests is not None and 1 <= rooms <= 9 and 1 <= guests <= 36:
        body["guests"] = min(max(guests, rooms), 4 * rooms)
    currency = body.get("currency")
    if isinstance(currency, str) and re.match(r"^[A-Z]{3}$", currency) and currency not in CURRENCIES:
        body["currency"] = CURRENCIES[digest[2] % len(CURRENCIES)]
    return body


@schemathesis.hook
def after_call(context, case, response):
    if (case.method.upper(), case.path) not in BOOKING_MUTATIONS:
        return
    if response.status_code not in (200, 201, 202):
        return
    try:
        booking_id = json.loads(response.content)["booking_id"]
    except (ValueError, KeyError, TypeError):
        return
    _WRITTEN[str(booking_id)] = time.monotonic()


@schemathesis.hook
def before_call(context, case, kwargs):
    if case.method.upper() != "GET" or case.path != "/v1/bookings/{id}":
        return
    written = _WRITTEN.get(str(case.path_parameters.get("id")))
    if written is not None:
        time.sleep(max(0.0, written + SETTLE_SECONDS - time.monotonic()))
