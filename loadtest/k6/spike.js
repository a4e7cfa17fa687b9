// Spike: a steady base rate, a sudden burst to several times it (a partner replaying a
// backlog, a flash sale), then back to the base, to see whether the ingress keeps its
// latency budget, sheds with 503 + Retry-After rather than queueing, and recovers.
//
//   k6 run loadtest/k6/spike.js   (BASE_RATE per second, default 50; PEAK_RATE, default 400;
//                                  HOLD, how long the peak lasts, default 20s)

import { envDuration, envNumber } from './lib/target.js';
import { seedRun } from './lib/run.js';
import { SUITE_OPTIONS } from './lib/client.js';
import { partnerRequest } from './lib/mix.js';

const BASE_RATE = envNumber('BASE_RATE', 50);
const PEAK_RATE = envNumber('PEAK_RATE', 400);

export const options = {
  ...SUITE_OPTIONS,
  scenarios: {
    spike: {
      executor: 'ramping-arrival-rate',
      startRate: BASE_RATE,
      timeUnit: '1s',
      preAllocatedVUs: 20,
      maxVUs: envNumber('MAX_VUS', 300),
      stages: [
        { target: BASE_RATE, duration: '20s' },
        { target: PEAK_RATE, duration: '5s' },
        { target: PEAK_RATE, duration: envDuration('HOLD', '20s') },
        { target: BASE_RATE, duration: '5s' },
        { target: BASE_RATE, duration: '20s' },
      ],
    },
  },
};

export const setup = seedRun;

export default function (data) {
  partnerRequest(data.runId);
}
