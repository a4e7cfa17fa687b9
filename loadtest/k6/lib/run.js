// A suite's setup(): a run id of its own and that run's inventory, the OpenTravel
// hotel's included.

import { newRunId, seedInventory } from './traffic.js';
import { seedOtaInventory } from './ota.js';

export function seedRun() {
  const runId = newRunId();
  seedInventory(runId);
  seedOtaInventory(runId);
  return { runId };
}
