// Who sends what: the demo partners, Zipf-skewed tenants and properties, realistic stays,
// and the allotments every suite sets before its first booking.
//
// Each run books its own properties (their ids carry the run id), so a run always starts
// from fresh inventory however often the suites run against the same stack.

import http from 'k6/http';
import { sleep } from 'k6';
import { INGRESS_URL, envNumber } from './target.js';

// The local demo partners of infra/dev-partners.json: ota-1 may do everything for every
// tenant; ota-2 may only write bookings, and only for acme and globex.
export const PARTNERS = {
  ota1: { id: 'ota-1', key: 'demo-ota-1-secret', tenants: null },
  ota2: { id: 'ota-2', key: 'demo-ota-2-secret', tenants: ['acme', 'globex'] },
};

// Ordered by popularity: a few hotel groups get most of the traffic.
export const TENANTS = ['acme', 'globex', 'initech', 'umbrella', 'hooli', 'soylent', 'stark', 'wayne'];
export const PROPERTIES_PER_TENANT = envNumber('PROPERTIES', 20);
export const ROOM_TYPES = [
  { code: 'DBL', units: 40 },
  { code: 'SGL', units: 20 },
];
// A season far enough ahead to stay bookable for years of runs.
export const SEASON_START = Date.UTC(2031, 0, 1);
export const SEASON_NIGHTS = 60;
const DAY_MS = 24 * 3600 * 1000;
const ZIPF_EXPONENT = 1.1;

export function newRunId() {
  return `k6${Date.now().toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`;
}

// Draws ranks 0..n-1 with probability proportional to 1/(rank+1)^s.
export function zipf(n, s = ZIPF_EXPONENT) {
  const cumulative = [];
  let total = 0;
  for (let rank = 0; rank < n; rank++) {
    total += 1 / Math.pow(rank + 1, s);
    cumulative.push(total);
  }
  return () => {
    const pick = Math.random() * total;
    let low = 0;
    let high = n - 1;
    while (low < high) {
      const mid = (low + high) >> 1;
      if (cumulative[mid] < pick) low = mid + 1;
      else high = mid;
    }
    return low;
  };
}

const tenantRank = zipf(TENANTS.length);
const propertyRank = zipf(PROPERTIES_PER_TENANT);

export function propertyId(runId, rank) {
  return `${runId}-p${rank}`;
}

export function night(offset) {
  return new Date(SEASON_START + offset * DAY_MS).toISOString().slice(0, 10);
}

export function randomInt(low, high) {
  return low + Math.floor(Math.random() * (high - low + 1));
}

// A tenant and property drawn from the skewed popularity, and a partner allowed to book
// for that tenant (ota-2 takes a share of acme's and globex's traffic).
export function pickPlace(runId) {
  const tenant = TENANTS[tenantRank()];
  const partner = PARTNERS.ota2.tenants.includes(tenant) && Math.random() < 0.4 ? PARTNERS.ota2 : PARTNERS.ota1;
  return { tenant, partner, property: propertyId(runId, propertyRank()) };
}

// A create body for one to four nights, one or two rooms, inside the season.
export function stayBody(place, guestName) {
  const nights = randomInt(1, 4);
  const checkIn = randomInt(0, SEASON_NIGHTS - nights);
  const rooms = randomInt(1, 2);
  const body = {
    tenant_id: place.tenant,
    property_id: place.property,
    room_type: ROOM_TYPES[randomInt(0, ROOM_TYPES.length - 1)].code,
    check_in: night(checkIn),
    check_out: night(checkIn + nights),
    rooms,
    guests: rooms * 2,
    amount_minor: 12000 * nights * rooms,
    currency: 'EUR',
  };
  if (guestName) body.guest_name = guestName;
  return body;
}

// Sets the season's allotment of every room type of every property of the run, as a hotel
// would before selling.
export function seedInventory(runId) {
  const allotments = [];
  for (const tenant of TENANTS) {
    for (let rank = 0; rank < PROPERTIES_PER_TENANT; rank++) {
      for (const room of ROOM_TYPES) {
        allotments.push({
          tenant_id: tenant, property_id: propertyId(runId, rank), room_type: room.code,
          from: night(0), to: night(SEASON_NIGHTS), units: room.units,
        });
      }
    }
  }
  setAllotments(runId, allotments);
  return allotments.length;
}

// Sends allotments and fails the run unless every one is acknowledged: creates sent before
// their inventory would be rejected as sold out. Allotments travel on their property's
// partition, so once acknowledged they are ordered before every later booking there.
export function setAllotments(runId, allotments) {
  const requests = allotments.map((body, i) => ['PUT', `${INGRESS_URL}/v1/inventory`, JSON.stringify(body), {
    headers: {
      authorization: `Bearer ${PARTNERS.ota1.key}`,
      'content-type': 'application/json',
      'idempotency-key': `${runId}-allotment-${i}`,
    },
    tags: { name: 'PUT /v1/inventory', op: 'allotment' },
    // A 503 here is retried below with the same key, so it is not an error of the run.
    responseCallback: http.expectedStatuses(202, 503),
  }]);
  // A few at a time, retrying 503s with the same key, as a partner would.
  for (let start = 0; start < requests.length; start += 16) {
    let pending = requests.slice(start, start + 16);
    for (let attempt = 0; pending.length > 0; attempt++) {
      if (attempt === 5) throw new Error(`inventory not acknowledged: ${pending.length} allotments still refused`);
      if (attempt > 0) sleep(1);
      const answers = http.batch(pending);
      pending = pending.filter((_, i) => answers[i].status !== 202);
    }
  }
}
