// OpenTravel messages as a channel manager sends them to POST /v1/ota: reservations for
// the demo partner's OpenTravel hotel (LIS001 of acme, its `ota_hotels` entry in
// infra/dev-partners.json), and retransmissions of them.
//
// An OpenTravel reservation is answered 200 once taken, whatever was decided: Success
// (confirmed), Success with an advisory Warning (not decided within the wait), or Errors
// with code 322 when LIS001 has no room left (its sold rooms carry over from earlier
// runs against the same stack, while each run sets its allotment again). Anything else
// fails the check. ota_answers counts the outcomes.

import http from 'k6/http';
import { check } from 'k6';
import exec from 'k6/execution';
import { Counter } from 'k6/metrics';
import { INGRESS_URL } from './target.js';
import { PARTNERS, night, randomInt, SEASON_NIGHTS } from './traffic.js';

const HOTEL = 'LIS001';
const OTA_NS = 'http://www.opentravel.org/OTA/2003/05';
const ROOMS = 40;
const otaAnswers = new Counter('ota_answers');
// This VU's last reservation message and what it was answered, to retransmit.
let last = null;

// Sets LIS001's double rooms for the season, as the hotel's channel manager would.
export function seedOtaInventory(runId) {
  const body = `<?xml version="1.0" encoding="UTF-8"?>
<OTA_HotelInvCountNotifRQ xmlns="${OTA_NS}" Version="1.0" EchoToken="${runId}-inventory">
  <Inventories HotelCode="${HOTEL}">
    <Inventory>
      <StatusApplicationControl Start="${night(0)}" End="${night(SEASON_NIGHTS - 1)}" InvTypeCode="DBL"/>
      <InvCounts><InvCount CountType="1" Count="${ROOMS}"/></InvCounts>
    </Inventory>
  </Inventories>
</OTA_HotelInvCountNotifRQ>`;
  const res = post(body, 'otaInventory');
  if (res.status !== 200 || !res.body.includes('<Success/>')) {
    throw new Error(`OpenTravel inventory not taken: ${res.status} ${res.body}`);
  }
}

// One OpenTravel request: a new reservation, or (one time in four, once there is one) a
// retransmission of this VU's last, which must be answered the same and marked a replay.
export function otaRequest(runId) {
  if (last && Math.random() < 0.25) {
    const res = post(last.body.replace('Version="1.0"', 'Version="1.0" RetransmissionIndicator="true"'), 'otaRetransmission');
    const outcome = outcomeOf(res);
    check(res, {
      'otaRetransmission: 200, replayed': () => res.status === 200 && res.headers['Idempotent-Replayed'] === 'true',
      // A pending first answer may have been decided since; a decided one never changes.
      'otaRetransmission: the same outcome': () => last.outcome === 'pending' || outcome === last.outcome,
    });
    return;
  }
  const nights = randomInt(1, 3);
  const checkIn = randomInt(0, SEASON_NIGHTS - nights);
  const channelId = `${runId}-${exec.vu.idInTest}-${exec.vu.iterationInScenario}`;
  const body = `<?xml version="1.0" encoding="UTF-8"?>
<OTA_HotelResNotifRQ xmlns="${OTA_NS}" Version="1.0" EchoToken="${channelId}">
  <HotelReservations>
    <HotelReservation ResStatus="Reserved">
      <UniqueID Type="14" ID="${channelId}"/>
      <RoomStays>
        <RoomStay>
          <RoomTypes><RoomType RoomTypeCode="DBL" NumberOfUnits="1"/></RoomTypes>
          <GuestCounts><GuestCount AgeQualifyingCode="10" Count="2"/></GuestCounts>
          <TimeSpan Start="${night(checkIn)}" End="${night(checkIn + nights)}"/>
          <Total AmountAfterTax="${(129.5 * nights).toFixed(2)}" CurrencyCode="EUR"/>
          <BasicPropertyInfo HotelCode="${HOTEL}"/>
        </RoomStay>
      </RoomStays>
    </HotelReservation>
  </HotelReservations>
</OTA_HotelResNotifRQ>`;
  const res = post(body, 'otaReservation');
  const outcome = outcomeOf(res);
  check(res, { 'otaReservation: 200 with Success or 322': () => res.status === 200 && outcome !== 'other' });
  last = { body, outcome };
}

function post(body, op) {
  const res = http.post(`${INGRESS_URL}/v1/ota`, body, {
    headers: { authorization: `Bearer ${PARTNERS.ota1.key}`, 'content-type': 'application/xml' },
    tags: { name: 'POST /v1/ota', op },
    responseCallback: http.expectedStatuses(200),
  });
  otaAnswers.add(1, { op, outcome: outcomeOf(res) });
  return res;
}

function outcomeOf(res) {
  const body = res.body || '';
  if (res.status !== 200) return 'other';
  if (body.includes('<Success/>')) return body.includes('<Warnings>') ? 'pending' : 'success';
  return body.includes('Code="322"') ? 'no_availability' : 'other';
}
