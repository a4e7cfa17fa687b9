// Contention: many partner connections race for the last rooms of one property and night,
// then the run checks the outcome through the API: every racer's booking is decided, no
// more are confirmed than there were rooms, and availability shows exactly what is left.
//
//   k6 run loadtest/k6/contention.js   (REQUESTS, default 300; ROOMS, default 5;
//                                       RACERS, concurrent VUs, default 20;
//                                       SETTLE_SECS, wait for the decisions, default 60)

import http from 'k6/http';
import { check, sleep } from 'k6';
import exec from 'k6/execution';
import { Rate } from 'k6/metrics';
import { envNumber, INGRESS_URL } from './lib/target.js';
import { PARTNERS, newRunId, night, setAllotments } from './lib/traffic.js';
import { SLO_THRESHOLDS, SUMMARY_TREND_STATS, send, availabilityPath, bookingsPath } from './lib/client.js';

const REQUESTS = envNumber('REQUESTS', 300);
const ROOMS = envNumber('ROOMS', 5);
const SETTLE_SECS = envNumber('SETTLE_SECS', 60);
const TENANT = 'acme'; // both demo partners may book for acme
const NIGHT = night(20);
const NEXT_DAY = night(21);

// 1 when an outcome check of the race holds, 0 when it does not: must never be 0.
const raceOutcome = new Rate('race_outcome');

export const options = {
  scenarios: {
    race: {
      executor: 'shared-iterations',
      vus: envNumber('RACERS', 20),
      iterations: REQUESTS,
      maxDuration: '60s',
    },
  },
  // No replays in this mix, so their threshold does not apply.
  thresholds: Object.assign({}, SLO_THRESHOLDS, { replays_matched: [], race_outcome: ['rate==1'] }),
  summaryTrendStats: SUMMARY_TREND_STATS,
  setupTimeout: '30s',
  teardownTimeout: `${SETTLE_SECS + 60}s`,
};

function racer(i) {
  return i % 2 === 0 ? PARTNERS.ota1 : PARTNERS.ota2;
}

function raceBody(property) {
  return {
    tenant_id: TENANT, property_id: property, room_type: 'DBL', check_in: NIGHT, check_out: NEXT_DAY,
    rooms: 1, guests: 2, amount_minor: 30000, currency: 'EUR',
  };
}

export function setup() {
  const runId = newRunId();
  const property = `${runId}-last-rooms`;
  setAllotments(runId, [{ tenant_id: TENANT, property_id: property, room_type: 'DBL', from: NIGHT, to: NEXT_DAY, units: ROOMS }]);
  return { runId, property };
}

export default function (data) {
  const i = exec.scenario.iterationInTest;
  send(racer(i), 'POST', '/v1/bookings', raceBody(data.property), { key: `${data.runId}-race-${i}`, op: 'create' });
}

// The booking ids come back from the ingress itself: a retry with each racer's key and
// body answers with the original acknowledgement (or, for a racer that got a 503, is its
// first successful try, as a partner's retry would be).
export function teardown(data) {
  const ids = [];
  for (let start = 0; start < REQUESTS; start += 25) {
    const batch = [];
    for (let i = start; i < Math.min(start + 25, REQUESTS); i++) {
      batch.push(['POST', `${INGRESS_URL}/v1/bookings`, JSON.stringify(raceBody(data.property)), {
        headers: {
          authorization: `Bearer ${racer(i).key}`, 'content-type': 'application/json',
          'idempotency-key': `${data.runId}-race-${i}`,
        },
        tags: { name: 'POST /v1/bookings', op: 'retry' },
      }]);
    }
    for (const res of http.batch(batch)) {
      if (res.status === 202) ids.push(res.json().booking_id);
    }
  }
  raceOutcome.add(ids.length === REQUESTS);
  check(ids, { 'every racer has an acknowledged booking': (got) => got.length === REQUESTS });

  const deadline = Date.now() + SETTLE_SECS * 1000;
  let statuses = {};
  while (Date.now() < deadline) {
    statuses = decisions(ids);
    if (Object.keys(statuses).length === ids.length) break;
    sleep(0.5);
  }
  const decided = Object.values(statuses);
  const confirmed = decided.filter((s) => s === 'confirmed').length;
  const availability = remainingAfterSettling(data.property, ROOMS - confirmed, deadline);
  console.log(`race for ${ROOMS} rooms: ${ids.length} acknowledged, ${decided.length} decided, `
    + `${confirmed} confirmed, availability shows ${availability} left`);

  const outcomes = {
    'every racer decided': decided.length === ids.length,
    'no oversell: confirmed <= rooms': confirmed <= ROOMS,
    'sold exactly to the allotment': confirmed === Math.min(ROOMS, ids.length),
    'availability = rooms - confirmed, never below 0': availability === ROOMS - confirmed && availability >= 0,
  };
  for (const [name, held] of Object.entries(outcomes)) {
    raceOutcome.add(held);
    check(null, { [name]: () => held });
  }
}

// Status of every decided booking (404 means not decided yet).
function decisions(ids) {
  const statuses = {};
  for (let start = 0; start < ids.length; start += 25) {
    const batch = ids.slice(start, start + 25).map((id) => ['GET', `${INGRESS_URL}${bookingsPath(id)}`, null, {
      headers: { authorization: `Bearer ${PARTNERS.ota1.key}` },
      tags: { name: 'GET /v1/bookings/{id}', op: 'settle' },
      responseCallback: http.expectedStatuses(200, 404),
    }]);
    http.batch(batch).forEach((res, k) => {
      if (res.status === 200) statuses[ids[start + k]] = res.json().status;
    });
  }
  return statuses;
}

// The night's remaining units once the projection shows the expected value (or the last
// value seen when the deadline passes first).
function remainingAfterSettling(property, expected, deadline) {
  let remaining = null;
  do {
    const res = send(PARTNERS.ota1, 'GET', availabilityPath(TENANT, property, 'DBL', NIGHT, NEXT_DAY), null, {
      op: 'settle', expect: 200, name: 'GET /v1/availability',
    });
    if (res.status === 200) remaining = res.json().nights[0].remaining;
    if (remaining === expected) break;
    sleep(0.5);
  } while (Date.now() < deadline);
  return remaining;
}
