// One partner request per call, drawn from a realistic day's mix: mostly creates, then
// modifies and cancels of bookings this VU made, reads, retries of acknowledged creates
// (replays), channel managers' OpenTravel reservations and retransmissions (`ota.js`) and
// the ways real integrations get requests wrong.
//
// Each VU remembers its own recent acknowledged creates (a k6 VU has its own JS runtime,
// so this module's state is per VU).

import exec from 'k6/execution';
import { PARTNERS, pickPlace, stayBody, night, randomInt, ROOM_TYPES, SEASON_NIGHTS, TENANTS } from './traffic.js';
import { send, acceptedBody, checkReplay, bookingsPath, availabilityPath } from './client.js';
import { otaRequest } from './ota.js';

// Percent of requests per operation.
const MIX = [
  ['create', 51],
  ['ota', 4],
  ['modify', 8],
  ['cancel', 7],
  ['replay', 6],
  ['readBooking', 10],
  ['readAvailability', 7],
  ['badRequest', 7],
];
const REMEMBERED = 50;
const recent = [];

export function partnerRequest(runId) {
  let roll = Math.random() * 100;
  let op = MIX[MIX.length - 1][0];
  for (const [name, share] of MIX) {
    if (roll < share) { op = name; break; }
    roll -= share;
  }
  // Follow-ups need an acknowledged create of this VU; until there is one, create.
  if (recent.length === 0 && !['readAvailability', 'badRequest', 'ota'].includes(op)) op = 'create';
  OPERATIONS[op](runId);
}

function requestKey(runId, suffix) {
  return `${runId}-${exec.vu.idInTest}-${exec.vu.iterationInScenario}-${suffix}`;
}

function pickRecent() {
  return recent[randomInt(0, recent.length - 1)];
}

const OPERATIONS = {
  create(runId) {
    const place = pickPlace(runId);
    const key = requestKey(runId, 'create');
    const body = stayBody(place, `Guest ${exec.vu.idInTest}`);
    const res = send(place.partner, 'POST', '/v1/bookings', body, { key, op: 'create' });
    const answer = acceptedBody(res);
    if (answer) {
      recent.push({ key, body, partner: place.partner, answer, modifies: 0 });
      if (recent.length > REMEMBERED) recent.shift();
    }
  },

  modify() {
    const booking = pickRecent();
    booking.modifies += 1;
    const body = Object.assign({}, booking.body);
    delete body.guest_name;
    const shift = booking.modifies % 2 === 1 ? 1 : -1;
    body.check_in = shiftDate(body.check_in, shift);
    body.check_out = shiftDate(body.check_out, shift);
    send(booking.partner, 'POST', bookingsPath(booking.answer.booking_id, 'modify'), body, {
      key: `${booking.key}-modify-${booking.modifies}`, op: 'modify', name: 'POST /v1/bookings/{id}/modify',
    });
  },

  cancel() {
    const booking = recent.splice(randomInt(0, recent.length - 1), 1)[0];
    send(booking.partner, 'POST', bookingsPath(booking.answer.booking_id, 'cancel'),
      { tenant_id: booking.body.tenant_id, property_id: booking.body.property_id, reason: 'guest changed plans' },
      { key: `${booking.key}-cancel`, op: 'cancel', name: 'POST /v1/bookings/{id}/cancel' });
  },

  // A partner retrying an acknowledged create, with its fields in another order: the
  // ingress compares bodies as JSON, so it must answer with the original acknowledgement.
  replay() {
    const booking = pickRecent();
    const reordered = {};
    for (const field of Object.keys(booking.body).reverse()) reordered[field] = booking.body[field];
    const res = send(booking.partner, 'POST', '/v1/bookings', reordered, { key: booking.key, op: 'replay' });
    checkReplay(res, booking.answer);
  },

  // Reads need bookings:read, which only ota-1 has. A booking the consumers have not
  // decided yet is 404.
  readBooking() {
    const booking = pickRecent();
    send(PARTNERS.ota1, 'GET', bookingsPath(booking.answer.booking_id), null, {
      op: 'readBooking', expect: [200, 404], name: 'GET /v1/bookings/{id}',
    });
  },

  readAvailability(runId) {
    const place = pickPlace(runId);
    const from = randomInt(0, SEASON_NIGHTS - 7);
    send(PARTNERS.ota1, 'GET', availabilityPath(place.tenant, place.property, ROOM_TYPES[0].code, night(from), night(from + 7)), null, {
      op: 'readAvailability', expect: 200, name: 'GET /v1/availability',
    });
  },

  ota(runId) {
    otaRequest(runId);
  },

  badRequest(runId) {
    BAD_REQUESTS[randomInt(0, BAD_REQUESTS.length - 1)](runId);
  },
};

// Each sends a request the ingress must refuse with exactly this status, never publishing it.
const BAD_REQUESTS = [
  function stayEndsBeforeItStarts(runId) {
    const place = pickPlace(runId);
    const body = stayBody(place);
    body.check_out = shiftDate(body.check_in, -1);
    send(place.partner, 'POST', '/v1/bookings', body, { key: requestKey(runId, 'bad-stay'), op: 'bad', expect: 422 });
  },
  function missingIdempotencyKey(runId) {
    const place = pickPlace(runId);
    send(place.partner, 'POST', '/v1/bookings', stayBody(place), { key: null, op: 'bad', expect: 400 });
  },
  function malformedJson(runId) {
    const place = pickPlace(runId);
    send(place.partner, 'POST', '/v1/bookings', '{"tenant_id": "acme",', {
      key: requestKey(runId, 'bad-json'), op: 'bad', expect: 400, raw: true,
    });
  },
  function wrongMediaType(runId) {
    const place = pickPlace(runId);
    send(place.partner, 'POST', '/v1/bookings', stayBody(place), {
      key: requestKey(runId, 'bad-media'), op: 'bad', expect: 415, contentType: 'text/plain',
    });
  },
  function unknownApiKey(runId) {
    const place = pickPlace(runId);
    send({ key: 'not-a-partner-key' }, 'POST', '/v1/bookings', stayBody(place), {
      key: requestKey(runId, 'bad-auth'), op: 'bad', expect: 401,
    });
  },
  function tenantOutsidePartnerScope(runId) {
    const place = pickPlace(runId);
    const outside = TENANTS.filter((t) => !PARTNERS.ota2.tenants.includes(t));
    place.tenant = outside[randomInt(0, outside.length - 1)];
    send(PARTNERS.ota2, 'POST', '/v1/bookings', stayBody(place), {
      key: requestKey(runId, 'bad-scope'), op: 'bad', expect: 403,
    });
  },
  // The same Idempotency-Key with another body: a client bug the ingress must not paper over.
  function idempotencyKeyReused(runId) {
    if (recent.length === 0) return BAD_REQUESTS[0](runId);
    const booking = pickRecent();
    const body = Object.assign({}, booking.body, { guests: booking.body.guests + 1 });
    send(booking.partner, 'POST', '/v1/bookings', body, { key: booking.key, op: 'bad', expect: 422 });
  },
];

function shiftDate(date, days) {
  return new Date(Date.parse(`${date}T00:00:00Z`) + days * 86400000).toISOString().slice(0, 10);
}
