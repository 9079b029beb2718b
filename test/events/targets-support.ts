import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from '@nats-io/transport-node';
import { Redis } from 'ioredis';
import { EVENT_SCHEMA_VERSION, EVENT_SOURCE, toIso, uuidv7, type CustodianEvent, type EventType } from '../../src/core/index.js';

export const NATS_URL = process.env.CUSTODIAN_TEST_NATS ?? 'nats://127.0.0.1:4222';
export const REDIS_URL = process.env.CUSTODIAN_TEST_REDIS ?? 'redis://127.0.0.1:6379';
export const NATS_SERVER_BIN = process.env.CUSTODIAN_NATS_SERVER ?? '/usr/sbin/nats-server';
/** Under CI every service must be there: a missing one fails the run instead of skipping it. */
export const CI = process.env.CI === 'true';

export async function natsUp(url = NATS_URL): Promise<boolean> {
  try {
    const nc = await connect({ servers: url, timeout: 1500, reconnect: false });
    await nc.close();
    return true;
  } catch {
    return false;
  }
}

export async function redisUp(url = REDIS_URL): Promise<boolean> {
  const r = new Redis(url, { lazyConnect: true, connectTimeout: 1500, maxRetriesPerRequest: 0, retryStrategy: () => null });
  r.on('error', () => undefined);
  try {
    await r.connect();
    await r.ping();
    return true;
  } catch {
    return false;
  } finally {
    r.disconnect();
  }
}

/** A random name part for streams, prefixes and keys of one test run. */
export function randomName(): string {
  return Math.random().toString(36).slice(2, 10);
}

let seq = 0;

/** A synthetic CloudEvent as the outbox renders one (ids only). */
export function fakeEvent(type: EventType, subjectId: string, data: Record<string, unknown> = {}, purposes: string[] = []): CustodianEvent {
  const now = Date.now();
  return {
    specversion: '1.0',
    id: uuidv7(now),
    source: EVENT_SOURCE,
    type,
    subject: subjectId,
    time: toIso(now),
    datacontenttype: 'application/json',
    sequence: String(++seq),
    schemaversion: EVENT_SCHEMA_VERSION,
    data: { subjectId, purposes, ...data },
  };
}

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** A private nats-server with JetStream on a free port and a temp store directory, restartable. */
export class PrivateNats {
  #child: ChildProcess | undefined;
  readonly port: number;
  readonly dir: string;

  private constructor(port: number, dir: string) {
    this.port = port;
    this.dir = dir;
  }

  static async start(): Promise<PrivateNats> {
    const n = new PrivateNats(await freePort(), await mkdtemp(join(tmpdir(), 'custodian-nats-')));
    await n.up();
    return n;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  async up(): Promise<void> {
    this.#child = spawn(NATS_SERVER_BIN, ['-js', '-a', '127.0.0.1', '-p', String(this.port), '-sd', this.dir], { stdio: 'ignore' });
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (await natsUp(this.url)) return;
      await sleep(50);
    }
    throw new Error('private nats-server did not start');
  }

  /** Stops the server (SIGTERM, or SIGKILL when `hard`) and waits for the process to end. */
  async down(hard = false): Promise<void> {
    const child = this.#child;
    this.#child = undefined;
    if (child === undefined || child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(hard ? 'SIGKILL' : 'SIGTERM');
    await Promise.race([exited, sleep(5000)]);
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  }

  async stop(): Promise<void> {
    await this.down(true);
    await rm(this.dir, { recursive: true, force: true });
  }
}
