import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Custodian } from '../../src/app/index.js';
import { STORE_KINDS, custodianFixture, type StoreFixture } from '../support/stores.js';
import { checkDelivery, startWebhookReceiver, until, type WebhookReceiver } from './webhook-receiver.js';

/*
 * A dispatcher killed with SIGKILL in the middle of deliveries (the receiver is slow, requests are in flight)
 * loses nothing: a new dispatcher takes the killed one's claims over once their lease (1.5 s here) runs out,
 * every event arrives, in order per subject, and the only duplicates are redeliveries of the same event.
 */

const CHILD = fileURLToPath(new URL('./fixtures/dispatcher-child.ts', import.meta.url));

/** A dispatcher process, loaded (Custodian open) but not delivering until {@link Child.go}. */
interface Child {
  readonly process: ChildProcess;
  go(): Promise<void>;
}

function startChild(fixture: StoreFixture): Promise<Child> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD], {
    env: { PATH: process.env.PATH, CUSTODIAN_DB: fixture.url, CUSTODIAN_DATA_DIR: fixture.dir },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let err = '';
  let out = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const saw = (word: string) =>
    new Promise<void>((resolve, reject) => {
      const check = () => out.includes(word) && resolve();
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        check();
      });
      check();
      child.once('exit', (code) => reject(new Error(`dispatcher exited early (${code}): ${err.slice(0, 500)}`)));
    });
  const ready = saw('ready');
  ready.catch(() => undefined);
  return saw('loaded').then(() => ({
    process: child,
    go: () => {
      child.stdin.write('go\n');
      return ready;
    },
  }));
}

const exited = (child: ChildProcess) => new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));

describe.each(STORE_KINDS)('dispatcher killed mid-delivery on %s', (kind) => {
  let c: Custodian;
  let fixture: StoreFixture;
  let cleanup: () => Promise<void>;
  let receiver: WebhookReceiver;
  let secret: string | undefined;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    ({ custodian: c, fixture, cleanup } = await custodianFixture(kind));
    receiver = await startWebhookReceiver(() => secret);
  });
  afterAll(async () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await Promise.all(children.map(exited));
    await receiver.close();
    await cleanup();
  });

  it('SIGKILL while the receiver is slow, restart: every event arrives, in order per subject', async () => {
    const sub = await c.subscriptions.create({ name: 'crash', target: { kind: 'webhook', url: receiver.url } }, 'test');
    secret = sub.secret;
    receiver.mode = { kind: 'slow', ms: 300 };
    const ids = Array.from({ length: 4 }, (_, i) => `crash-${i}-${Math.random().toString(36).slice(2, 8)}`);
    const from = await c.outbox.head();
    for (let r = 0; r < 5; r++) {
      await c.ledger.record(ids.map((subjectId) => ({ subjectId, purpose: 'personalize', decision: r % 2 === 0 ? ('granted' as const) : ('withdrawn' as const) })), { actor: 'test' });
    }
    const expected = (await c.outbox.read(from, 1000)).filter((e) => e.subject !== undefined && ids.includes(e.subject));
    expect(expected).toHaveLength(20);

    // Both processes start now (loading takes seconds on a busy machine); the standby delivers only when told.
    const [one, two] = await Promise.all([startChild(fixture), startChild(fixture)]);
    const first = one.process;
    children.push(first, two.process);
    await one.go();
    await until(() => receiver.received.length >= 4 && receiver.inFlight > 0, 15_000, 'deliveries in flight');
    first.kill('SIGKILL');
    await exited(first);
    expect(first.signalCode).toBe('SIGKILL');
    const pendingAfterKill = (await c.subscriptions.deliveries(sub.id, { status: 'pending', limit: 1000 })).length;
    expect(pendingAfterKill).toBeGreaterThan(0);

    receiver.mode = { kind: 'slow', ms: 20 };
    await two.go();
    const second = two.process;
    await until(async () => (await c.subscriptions.metrics()).some((m) => m.id === sub.id && m.pending === 0 && m.lag === 0), 20_000, 'every delivery settled');
    second.kill('SIGTERM');
    await exited(second);

    const { duplicates } = checkDelivery(receiver.received, expected);
    // The requests in flight at the kill were answered but never acknowledged: they were delivered again.
    expect(duplicates).toBeGreaterThanOrEqual(1);
    const deliveries = await c.subscriptions.deliveries(sub.id, { limit: 1000 });
    expect(deliveries.every((d) => d.status === 'delivered')).toBe(true);
    expect(deliveries).toHaveLength(20);
    // The work takes a few seconds; loading two child processes can take ten more on a busy machine.
  }, 60_000);
});
