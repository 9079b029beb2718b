import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Custodian } from '../../src/app/index.js';
import { runCli } from '../../src/cli/program.js';
import { stepProgress } from '../../src/cli/progress.js';
import { ADA, shopDatabase, shopManifest, type ShopTables } from '../support/shop.js';
import { custodianFixture, type StoreFixture } from '../support/stores.js';

/* Progress of long CLI work: a bar on a terminal, plain lines otherwise (pipes, logs, these tests). */

function capture(tty?: NodeJS.WritableStream) {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { stdout: (t: string) => out.push(t), stderr: (t: string) => err.push(t), env: {}, ...(tty ? { tty } : {}) }, out: () => out.join(''), err: () => err.join('') };
}

/** A writable that says it is a terminal, collecting what is drawn on it. */
function fakeTerminal(): { stream: NodeJS.WritableStream; text: () => string } {
  const stream = Object.assign(new PassThrough(), { isTTY: true, columns: 100, rows: 30 });
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

describe('step progress', () => {
  it('prints a plain line per step when stderr is not a terminal', () => {
    const s = capture();
    const p = stepProgress(s.io, 'r-1 ');
    p.onStep(1, 'lookup:shop_db.customers', 3);
    p.onStep(2, 'lookup:shop_db.orders', 3);
    p.stop();
    expect(s.err()).toBe('r-1 [1/3] lookup:shop_db.customers\nr-1 [2/3] lookup:shop_db.orders\n');
  });

  it('draws a bar with steps done/total on a terminal, and nothing on the plain stream', () => {
    const term = fakeTerminal();
    const s = capture(term.stream);
    const p = stepProgress(s.io, '{req} ');
    p.onStep(1, 'lookup:a', 4);
    p.onStep(5, 'lookup:a', 5); // a repeated lookup: the total grows with it
    p.stop();
    expect(s.err()).toBe('');
    const drawn = term.text();
    expect(drawn).toContain('1/4 steps | lookup:a');
    expect(drawn).toContain('5/5 steps | lookup:a');
    expect(drawn).toContain('req '); // braces of a label are not read as placeholders
    expect(drawn).toContain('\u001b['); // cursor control: drawn in place
  });
});

describe('custodian request run | worker report progress', () => {
  let c: Custodian;
  let fixture: StoreFixture;
  let cleanup: () => Promise<void>;
  let dir: string;
  let args: string[];

  beforeAll(async () => {
    ({ custodian: c, fixture, cleanup } = await custodianFixture('sqlite'));
    dir = await mkdtemp(join(tmpdir(), 'custodian-progress-'));
    const appPath = join(dir, 'app.db');
    // Ada and her two orders: a run looks up two collections.
    const shop = { customers: [], orders: [] } satisfies ShopTables;
    shopDatabase(appPath, { ...shop, rows: { customers: [ADA], orders: 2 } });
    await c.datamap.put(shopManifest(appPath, { ...shop, organization: 'Progress Shop' }), { actor: 'test' });
    args = ['--db', fixture.url, '--data-dir', fixture.dir];
  });
  afterAll(async () => {
    await cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  const access = async () => (await c.requests.create({ type: 'access', jurisdiction: 'EU', identities: { email: 'ada@example.com' }, authenticated: true, actor: 'app' })).id;

  it('`request run` prints [done/total] step lines on stderr without a terminal, and the request on stdout', async () => {
    const id = await access();
    const s = capture();
    expect(await runCli(['request', 'run', id, ...args], s.io)).toBe(0);
    expect(s.err()).toBe('[1/2] lookup:shop_db.customers\n[2/2] lookup:shop_db.orders\n');
    expect(JSON.parse(s.out())).toMatchObject({ id, status: 'completed' });
  });

  it('`worker --once` reports each request’s steps, prefixed by its id, and a JSON line per request', async () => {
    const id = await access();
    const s = capture();
    expect(await runCli(['worker', '--once', ...args], s.io)).toBe(0);
    expect(s.err()).toContain(`${id} [1/2] lookup:shop_db.customers\n${id} [2/2] lookup:shop_db.orders\n`);
    expect(s.out().trim().split('\n').map((l) => JSON.parse(l) as unknown)).toContainEqual({ id, status: 'completed', steps: 2 });
  });
});
