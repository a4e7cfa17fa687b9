// Requests to the ingress as a partner sends them, and the metrics the SLOs are judged on.
//
// Every request states the status it expects. Only an answer other than that counts in
// http_req_failed (the error rate): a deliberately bad request that gets its 4xx is a
// success of the ingress, counted in refused_as_expected instead.

import http from 'k6/http';
import { check } from 'k6';
import { Counter, Rate, Trend } from 'k6/metrics';
import { INGRESS_URL } from './target.js';

// Request -> acknowledgement of first-time mutations: the publish latency the SLO is about.
export const publishAck = new Trend('publish_ack', true);
export const refusedAsExpected = new Counter('refused_as_expected');
export const replaysMatched = new Rate('replays_matched');
// 503 and 429: the ingress shedding load with Retry-After. Still errors of the run (in
// http_req_failed), counted apart because they say "too much", not "wrong".
export const backpressure = new Counter('backpressure_answers');
// Unexpected answers each VU describes in the log, enough to diagnose without flooding it.
const DESCRIBED_PER_VU = 3;
let described = 0;

// The SLOs every traffic suite is held to: p99 request -> ack within the 60 ms publish
// budget, and under 1% of requests answered otherwise than expected (5xx, 503 shedding,
// 429, or a wrong status).
export const SLO_THRESHOLDS = {
  publish_ack: ['p(99)<=60'],
  http_req_failed: ['rate<0.01'],
  checks: ['rate>0.99'],
  replays_matched: ['rate>0.99'],
};
export const SUMMARY_TREND_STATS = ['avg', 'min', 'med', 'p(90)', 'p(99)', 'max', 'count'];

// What every suite's options share: the SLOs, the summary's statistics and time for
// setup() to seed the run's inventory.
export const SUITE_OPTIONS = {
  thresholds: SLO_THRESHOLDS,
  summaryTrendStats: SUMMARY_TREND_STATS,
  setupTimeout: '60s',
};

// Sends one request and checks its status. `key` null leaves out the Idempotency-Key;
// `raw` sends the body string as is (malformed JSON); `op` tags the request.
export function send(partner, method, path, body, { key, op, expect = 202, name, contentType = 'application/json', raw = false } = {}) {
  const headers = { authorization: `Bearer ${partner.key}` };
  if (body !== null) headers['content-type'] = contentType;
  if (key) headers['idempotency-key'] = key;
  const res = http.request(method, `${INGRESS_URL}${path}`, body === null ? null : raw ? body : JSON.stringify(body), {
    headers,
    tags: { name: name || `${method} ${path}`, op },
    responseCallback: http.expectedStatuses(...[].concat(expect)),
  });
  const expected = [].concat(expect).includes(res.status);
  check(res, { [`${op}: ${[].concat(expect).join(' or ')}`]: () => expected });
  if (expected && res.status >= 400) refusedAsExpected.add(1, { op });
  if (!expected) describeUnexpected(res, name || `${method} ${path}`, expect);
  if (expected && res.status === 202 && res.headers['Idempotent-Replayed'] !== 'true') {
    publishAck.add(res.timings.duration, { op });
  }
  return res;
}

function describeUnexpected(res, name, expect) {
  if (res.status === 503 || res.status === 429) backpressure.add(1);
  if (described >= DESCRIBED_PER_VU) return;
  described += 1;
  let problem = '';
  try {
    problem = res.json().type || '';
  } catch (_) {
    problem = res.error || '';
  }
  console.warn(`${name}: expected ${[].concat(expect).join(' or ')}, got ${res.status} ${problem} after ${res.timings.duration.toFixed(1)} ms`);
}

export function acceptedBody(res) {
  if (res.status !== 202) return null;
  try {
    return res.json();
  } catch (_) {
    return null;
  }
}

// A replay must get the original answer back, marked as a replay.
export function checkReplay(res, original) {
  const answer = acceptedBody(res);
  const matched = answer !== null && res.headers['Idempotent-Replayed'] === 'true'
    && answer.event_id === original.event_id && answer.booking_id === original.booking_id
    && answer.offset === original.offset && answer.partition === original.partition;
  replaysMatched.add(matched);
  check(res, { 'replay: original answer with Idempotent-Replayed: true': () => matched });
  return matched;
}

export function bookingsPath(bookingId, action) {
  return action ? `/v1/bookings/${bookingId}/${action}` : `/v1/bookings/${bookingId}`;
}

export function availabilityPath(tenant, property, roomType, from, to) {
  return `/v1/availability?tenant_id=${tenant}&property_id=${property}&room_type=${roomType}&from=${from}&to=${to}`;
}
