// Smoke: a short, gentle run of the whole partner mix to prove the pipeline answers as
// the contract says. Short enough for every CI run.
//
//   k6 run loadtest/k6/smoke.js    (RATE per second, default 20; DURATION, default 25s)

import { envDuration, envNumber } from './lib/target.js';
import { newRunId, seedInventory } from './lib/traffic.js';
import { SLO_THRESHOLDS, SUMMARY_TREND_STATS } from './lib/client.js';
import { partnerRequest } from './lib/mix.js';

export const options = {
  scenarios: {
    smoke: {
      executor: 'constant-arrival-rate',
      rate: envNumber('RATE', 20),
      timeUnit: '1s',
      duration: envDuration('DURATION', '25s'),
      preAllocatedVUs: 5,
      maxVUs: 20,
    },
  },
  thresholds: SLO_THRESHOLDS,
  summaryTrendStats: SUMMARY_TREND_STATS,
  setupTimeout: '60s',
};

export function setup() {
  const runId = newRunId();
  seedInventory(runId);
  return { runId };
}

export default function (data) {
  partnerRequest(data.runId);
}
