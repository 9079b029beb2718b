/**
 * `npm run bench -- propagation` (issue 7): (a) filterByConsent over JSONL vs a plain parse-and-write pass and
 * vs one store lookup per record; (b) end-to-end latency from POST /v1/consent/events to a NATS subscriber and
 * to a ConsentClient cache; (c) ConsentClient.isAllowed from memory. Parts live in their own files.
 */
import { busBench } from './propagation-bus.js';
import { filterBench } from './propagation-filter.js';

export async function run(): Promise<void> {
  const figures: Record<string, number> = {};
  Object.assign(figures, await filterBench());
  Object.assign(figures, await busBench());
  const line = Object.entries(figures)
    .map(([k, v]) => `${k}=${Number.isInteger(v) ? v : v.toFixed(3)}`)
    .join(' ');
  console.log(`RESULT propagation ${line}`);
}
