// Load: the partner mix at a constant arrival rate (open model: requests keep arriving at
// RATE per second however slow the answers get, as partners' traffic does).
//
//   k6 run loadtest/k6/load.js    (RATE per second, default 200; DURATION, default 60s)

import { envDuration, envNumber } from './lib/target.js';
import { seedRun } from './lib/run.js';
import { SUITE_OPTIONS } from './lib/client.js';
import { partnerRequest } from './lib/mix.js';

export const options = {
  ...SUITE_OPTIONS,
  scenarios: {
    load: {
      executor: 'constant-arrival-rate',
      rate: envNumber('RATE', 200),
      timeUnit: '1s',
      duration: envDuration('DURATION', '60s'),
      preAllocatedVUs: 20,
      maxVUs: envNumber('MAX_VUS', 200),
    },
  },
};

export const setup = seedRun;

export default function (data) {
  partnerRequest(data.runId);
}
