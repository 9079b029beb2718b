import { setTimeout as sleep } from 'node:timers/promises';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { existsSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { subscribeEvents, type BusSubscription } from '../../src/client/index.js';
import type { CustodianEvent } from '../../src/core/index.js';
import { natsTarget } from '../../src/events/targets/nats.js';
import type { DeliveryTarget } from '../../src/events/targets/target.js';
import { CI, NATS_SERVER_BIN, PrivateNats, fakeEvent } from './targets-support.js';

const N = 3000;
const SUBJECTS = 30;
const BATCH = 100;

/**
 * What the dispatcher does with a target: deliver in order; on a retryable failure, wait and deliver the rest
 * again from the first event not acknowledged. Returns how many attempts failed.
 */
async function deliverWithRetries(target: DeliveryTarget, events: readonly CustodianEvent[], onProgress: (delivered: number) => void): Promise<number> {
  let done = 0;
  let failures = 0;
  while (done < events.length) {
    const batch = events.slice(done, done + BATCH);
    const outcomes = await target.deliver(batch);
    const ok = outcomes.findIndex((o) => !o.ok);
    done += ok === -1 ? outcomes.length : ok;
    onProgress(done);
    if (ok !== -1) {
      failures++;
      if (!outcomes[ok]!.retryable) throw new Error(`permanent failure: ${outcomes[ok]!.error}`);
      await sleep(100);
    }
  }
  return failures;
}

describe.skipIf(!existsSync(NATS_SERVER_BIN) && !CI)('NATS target and consumer through server restarts', () => {
  let nats: PrivateNats | undefined;
  let target: DeliveryTarget | undefined;
  let sub: BusSubscription | undefined;

  afterAll(async () => {
    await sub?.close();
    await target?.close();
    // Kills the private nats-server child process and removes its store.
    await nats?.stop();
  });

  it(`every one of ${N} events arrives, in order per subject, stored once, across a graceful and a hard restart`, { timeout: 120_000 }, async () => {
    nats = await PrivateNats.start();
    const stream = 'RELIABILITY';
    const prefix = 'rel.events';
    target = natsTarget({ url: nats.url, stream, subjectPrefix: prefix, ackTimeoutMs: 1000, duplicateWindowMs: 600_000 });
    sub = await subscribeEvents({ kind: 'nats', url: nats.url, stream, subjectPrefix: prefix, heartbeatMs: 500 });

    const received: CustodianEvent[] = [];
    const reading = (async () => {
      for await (const e of sub) received.push(e);
    })();

    const events = Array.from({ length: N }, (_, i) => fakeEvent('consent.granted', `subject-${i % SUBJECTS}`, { n: i }, ['personalize']));
    const restarts: Array<{ hard: boolean; at: number; downMs: number }> = [];
    let restarting: Promise<void> | undefined;
    const restartAt = (delivered: number, threshold: number, hard: boolean): void => {
      if (delivered < threshold || restarts.some((r) => r.at === threshold)) return;
      restarts.push({ hard, at: threshold, downMs: 0 });
      restarting = (async () => {
        const t0 = Date.now();
        await nats!.down(hard);
        await sleep(700);
        await nats!.up();
        restarts[restarts.length - 1]!.downMs = Date.now() - t0;
      })();
    };
    const t0 = Date.now();
    const failures = await deliverWithRetries(target, events, (delivered) => {
      restartAt(delivered, N / 3, false);
      restartAt(delivered, (2 * N) / 3, true);
    });
    await restarting;
    const publishMs = Date.now() - t0;

    const deadline = Date.now() + 30_000;
    while (new Set(received.map((e) => e.id)).size < N && Date.now() < deadline) await sleep(100);

    // Every event arrived.
    const byId = new Map(events.map((e) => [e.id, e]));
    const distinct = new Set(received.map((e) => e.id));
    expect(distinct.size).toBe(N);
    // A repeat, if any, is the same event (same id, same content): consumers de-duplicate by id.
    for (const e of received) expect(e).toStrictEqual(byId.get(e.id));
    // In order per subject: the first arrival of each event follows the publishing order of its subject.
    const seen = new Set<string>();
    const last = new Map<string, number>();
    for (const e of received) {
      if (seen.has(e.id)) continue;
      seen.add(e.id);
      const n = e.data.n as number;
      expect(n).toBeGreaterThan(last.get(e.subject!) ?? -1);
      last.set(e.subject!, n);
    }
    // JetStream stored each event once, although batches were retried around the restarts.
    const nc = await connect({ servers: nats.url });
    const info = await (await jetstreamManager(nc)).streams.info(stream);
    await nc.close();
    expect(info.state.messages).toBe(N);

    expect(restarts).toHaveLength(2);
    const duplicates = received.length - distinct.size;
    process.stdout.write(
      `reliability: ${N} events, ${failures} failed delivery attempts retried, restarts ${JSON.stringify(restarts)}, publish ${publishMs} ms, ` +
        `duplicates seen by the consumer ${duplicates}, stored ${info.state.messages}\n`,
    );
    await sub.close();
    await reading;
  });
});
