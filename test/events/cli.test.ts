import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCliCaptured } from '../support/cli.js';
import { startWebhookReceiver, type WebhookReceiver } from './webhook-receiver.js';

/* `custodian events …` in process, on a SQLite store, with a real webhook receiver for `worker --once`. */

describe('custodian events', () => {
  let dir: string;
  let args: string[];
  let receiver: WebhookReceiver;
  let secret: string | undefined;
  const cli = (argv: string[]) => runCliCaptured([...argv, ...args]);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'custodian-events-cli-'));
    args = ['--db', `sqlite:${join(dir, 'c.db')}`, '--data-dir', dir];
    receiver = await startWebhookReceiver(() => secret);
  });
  afterAll(async () => {
    await receiver.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('creates, lists, delivers (worker --once), shows deliveries, replays, tails and deletes', async () => {
    const created = await cli(['events', 'subscriptions', 'create', '--name', 'crm', '--url', receiver.url, '--types', 'consent.granted,consent.withdrawn']);
    expect(created.code, created.stderr).toBe(0);
    const sub = JSON.parse(created.stdout) as { id: string; secret: string; kind: string };
    expect(sub.kind).toBe('webhook');
    secret = sub.secret;

    const listed = await cli(['events', 'subscriptions', 'list']);
    expect(listed.stdout).toContain(sub.id);
    expect(listed.stdout).not.toContain(sub.secret);
    expect(JSON.parse((await cli(['events', 'subscriptions', 'list', '--json'])).stdout)).toMatchObject({ subscriptions: [{ id: sub.id, types: ['consent.granted', 'consent.withdrawn'] }] });

    expect((await cli(['consent', 'grant', 'cli-subject-1', 'personalize'])).code).toBe(0);
    const worker = await cli(['worker', '--once']);
    expect(worker.code, worker.stderr).toBe(0);
    expect(receiver.received.filter((r) => r.verified && r.type === 'consent.granted')).toHaveLength(1);

    const deliveries = await cli(['events', 'deliveries', sub.id, '--status', 'delivered', '--json']);
    expect(JSON.parse(deliveries.stdout)).toMatchObject({ deliveries: [{ status: 'delivered', attempts: 1 }] });
    expect((await cli(['events', 'deliveries', sub.id])).stdout).toMatch(/delivered/);
    expect((await cli(['events', 'deliveries', sub.id, '--attempts'])).stdout).toMatch(/attempt 1 {2}delivered HTTP 200/);

    const replay = await cli(['events', 'replay', '--subscription', sub.id, '--from', '1']);
    expect(replay.code, replay.stderr).toBe(0);
    expect(JSON.parse(replay.stdout)).toMatchObject({ fromSeq: 1, queued: 1 });
    const byTime = await cli(['events', 'replay', '--subscription', sub.id, '--from', '2020-01-01T00:00:00.000Z']);
    expect(JSON.parse(byTime.stdout)).toMatchObject({ fromTime: '2020-01-01T00:00:00.000Z', queued: 1 });
    expect((await cli(['events', 'replay', '--subscription', sub.id, '--from', 'yesterday'])).code).toBe(2);

    const tail = await cli(['events', 'tail', '--after', '0']);
    const lines = tail.stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string; subject: string });
    expect(lines[0]).toMatchObject({ type: 'consent.granted', subject: 'cli-subject-1' });

    expect((await cli(['events', 'subscriptions', 'delete', sub.id])).code).toBe(0);
    const again = await cli(['events', 'subscriptions', 'delete', sub.id]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('CST_ERR_EVENT_SUBSCRIPTION_NOT_FOUND');
  });

  it('refuses bad input with exit code 2', async () => {
    expect((await cli(['events', 'subscriptions', 'create', '--name', 'x', '--url', 'ftp://example.com'])).code).toBe(2);
    expect((await cli(['events', 'subscriptions', 'create', '--name', 'x', '--url', 'https://example.com', '--types', 'consent.nope'])).code).toBe(2);
    expect((await cli(['events', 'deliveries', 'not-an-id'])).code).toBe(2);
  });
});
