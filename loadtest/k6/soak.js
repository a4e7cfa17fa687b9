// Soak: a moderate constant rate for a long stretch, to surface what only time shows: a
// growing broker log slowing fetches, caches filling up, memory creeping, latency drifting.
// Bounded: 10 minutes unless DURATION says otherwise.
//
//   k6 run loadtest/k6/soak.js    (RATE per second, default 100; DURATION, default 10m)

import { envDuration, envNumber } from './lib/target.js';
import { seedRun } from './lib/run.js';
import { SUITE_OPTIONS } from './lib/client.js';
import { partnerRequest } from './lib/mix.js';

export const options = {
  ...SUITE_OPTIONS,
  scenarios: {
    soak: {
      executor: 'constant-arrival-rate',
      rate: envNumber('RATE', 100),
      timeUnit: '1s',
      duration: envDuration('DURATION', '10m'),
      preAllocatedVUs: 10,
      maxVUs: envNumber('MAX_VUS', 100),
    },
  },
};

export const setup = seedRun;

export default function (data) {
  partnerRequest(data.runId);
}
