// Idempotency: the IETF idempotency-key contract under concurrent partners. Each iteration
// creates a booking, then retries it (same body, and the same body with its fields in
// another order and other whitespace), reuses the key for another body, has the other
// partner use the same key, and fires simultaneous duplicates of a fresh key.
//
//   k6 run loadtest/k6/idempotency.js   (VUS, default 10; ITERATIONS per VU, default 20)

import http from 'k6/http';
import { check } from 'k6';
import exec from 'k6/execution';
import { envNumber, INGRESS_URL } from './lib/target.js';
import { PARTNERS, pickPlace, stayBody } from './lib/traffic.js';
import { seedRun } from './lib/run.js';
import { SUITE_OPTIONS, acceptedBody, checkReplay, send } from './lib/client.js';

export const options = {
  ...SUITE_OPTIONS,
  scenarios: {
    idempotency: {
      executor: 'per-vu-iterations',
      vus: envNumber('VUS', 10),
      iterations: envNumber('ITERATIONS', 20),
      maxDuration: '90s',
    },
  },
};

export const setup = seedRun;

export default function (data) {
  // Both partners may book for acme and globex, which the key-per-partner check needs.
  let place = pickPlace(data.runId);
  while (!PARTNERS.ota2.tenants.includes(place.tenant)) place = pickPlace(data.runId);
  const partner = exec.vu.idInTest % 2 === 0 ? PARTNERS.ota1 : PARTNERS.ota2;
  const other = partner === PARTNERS.ota1 ? PARTNERS.ota2 : PARTNERS.ota1;
  const key = `${data.runId}-${exec.vu.idInTest}-${exec.vu.iterationInScenario}`;
  const body = stayBody(place);

  const first = acceptedBody(send(partner, 'POST', '/v1/bookings', body, { key, op: 'create' }));
  if (first === null) return;

  checkReplay(send(partner, 'POST', '/v1/bookings', body, { key, op: 'replay' }), first);
  const respaced = JSON.stringify(Object.fromEntries(Object.entries(body).reverse()), null, 2);
  checkReplay(send(partner, 'POST', '/v1/bookings', respaced, { key, op: 'replay', raw: true }), first);

  const reused = send(partner, 'POST', '/v1/bookings', Object.assign({}, body, { rooms: body.rooms + 1, guests: body.guests + 2 }), {
    key, op: 'reuse', expect: 422,
  });
  check(reused, { 'reuse: /problems/idempotency-key-reused': (r) => r.status === 422 && r.json().type === '/problems/idempotency-key-reused' });

  // Keys belong to the partner: the same key from another partner is a new booking.
  const theirs = send(other, 'POST', '/v1/bookings', body, { key, op: 'create' });
  check(theirs, {
    'other partner: a booking of its own': (r) => r.status === 202 && r.headers['Idempotent-Replayed'] !== 'true'
      && r.json().booking_id !== first.booking_id,
  });

  racingDuplicates(partner, body, `${key}-dup`);
}

// Simultaneous requests with one fresh key: exactly one is published; the others get the
// same acknowledgement (if the first finished) or 409 in flight, never a second booking.
function racingDuplicates(partner, body, key) {
  const request = ['POST', `${INGRESS_URL}/v1/bookings`, JSON.stringify(body), {
    headers: { authorization: `Bearer ${partner.key}`, 'content-type': 'application/json', 'idempotency-key': key },
    tags: { name: 'POST /v1/bookings', op: 'duplicate' },
    responseCallback: http.expectedStatuses(202, 409),
  }];
  const answers = http.batch([request, request, request]);
  const accepted = answers.filter((r) => r.status === 202).map((r) => r.json());
  const fresh = answers.filter((r) => r.status === 202 && r.headers['Idempotent-Replayed'] !== 'true');
  check(answers, {
    'duplicates: each 202 or 409': (all) => all.every((r) => r.status === 202 || r.status === 409),
    'duplicates: at most one first answer': () => fresh.length <= 1,
    'duplicates: every 202 names the same booking': () => accepted.every((a) => a.event_id === accepted[0].event_id),
    '409 in flight carries Retry-After': (all) => all.every((r) => r.status !== 409 || Number(r.headers['Retry-After']) >= 1),
  });
  // Once settled, a retry gets the one acknowledgement.
  const settled = send(partner, 'POST', '/v1/bookings', body, { key, op: 'duplicate', expect: [202, 409] });
  if (accepted.length > 0 && settled.status === 202) checkReplay(settled, accepted[0]);
}
