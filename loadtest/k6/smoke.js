// Smoke: a short, gentle run of the whole partner mix to prove the pipeline answers as
// the contract says. Short enough for every CI run.
//
//   k6 run loadtest/k6/smoke.js    (RATE per second, default 20; DURATION, default 25s)

import { envDuration, envNumber } from './lib/target.js';
import { seedRun } from './lib/run.js';
import { SUITE_OPTIONS } from './lib/client.js';
import { partnerRequest } from './lib/mix.js';

export const options = {
  ...SUITE_OPTIONS,
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
};

export const setup = seedRun;

export default function (data) {
  partnerRequest(data.runId);
}
