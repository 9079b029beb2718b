import { spawn } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Custodian } from '../../src/app/index.js';
import { EXIT } from '../../src/cli/io.js';
import { BadLineError, keptBytes, readJsonlWindows } from '../../src/cli/jsonl.js';
import { buildServer } from '../../src/server/index.js';
import { runCliCaptured } from '../support/cli.js';
import { custodianFixture } from '../support/stores.js';

/* `custodian filter` end to end: the real binary (node --import tsx src/cli/main.ts) with stdin and stdout. */

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const PURPOSE = 'train_ai_system';

interface Run {
  readonly code: number;
  readonly stdout: Buffer;
  readonly stderr: string;
}

function runFilter(args: readonly string[], stdin: string | Buffer, env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'filter', ...args], { env: { PATH: process.env.PATH, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code: code ?? -1, stdout: Buffer.concat(out), stderr: err }));
    child.stdin.on('error', () => undefined);
    child.stdin.end(stdin);
  });
}

describe('custodian filter', () => {
  let custodian: Custodian;
  let cleanup: () => Promise<void>;
  let env: NodeJS.ProcessEnv;
  let db: string;

  beforeAll(async () => {
    const f = await custodianFixture('sqlite');
    custodian = f.custodian;
    cleanup = f.cleanup;
    db = f.fixture.url;
    env = { CUSTODIAN_DATA_DIR: f.fixture.dir };
    const rec = (subjectId: string, decision: 'granted' | 'denied' | 'withdrawn') => ({ subjectId, purpose: PURPOSE, decision, method: 'api' as const });
    await custodian.ledger.record([rec('u-1', 'granted'), rec('u-2', 'granted'), rec('u-3', 'denied'), rec('u-4', 'granted')], { actor: 'test' });
    await custodian.ledger.record([rec('u-4', 'withdrawn')], { actor: 'test' });
  });
  afterAll(async () => {
    await cleanup?.();
  });

  it('writes the kept lines byte for byte, in order, and summarises on stderr', async () => {
    const lines = [
      '{"user_id":"u-1","text":"héllo ✓","n":1.50}\n',
      '{"user_id":"u-3","n":2}\n',
      '{ "user_id" : "u-2" ,  "n":3 }\r\n',
      '\n',
      '{"user_id":"u-4"}\n',
      '{"user_id":"u-9"}\n',
      '{"other":"u-1"}\n',
      '{"user_id":"u-1","last":true}',
    ];
    const run = await runFilter(['--purpose', PURPOSE, '--subject-field', 'user_id', '--db', db, '--window', '3'], lines.join(''), env);
    expect(run.code, run.stderr).toBe(EXIT.ok);
    expect(run.stdout.toString()).toBe(lines[0]! + lines[2]! + lines[7]!);
    expect(run.stderr).toMatch(/filter complete: 7 read, 3 kept, 4 dropped \(no_consent 1, denied 1, withdrawn 1, missing_subject 1\)/);
  }, 180_000);

  it('--on-bad-line fail (the default): stops at the first bad line with exit 1, naming its line number only', async () => {
    const input = '{"user_id":"u-1","n":1}\n{"user_id":"u-2","n":2}\n{"user_id":"u-1", secret-value-jane@example.com\n{"user_id":"u-1","n":4}\n';
    const run = await runFilter(['--purpose', PURPOSE, '--subject-field', 'user_id', '--db', db, '--json'], input, env);
    expect(run.code).toBe(EXIT.failure);
    expect(run.stderr).toContain('line 3 is not valid JSON');
    expect(run.stderr).not.toContain('jane@example.com');
    expect(run.stderr).not.toContain('secret-value');
    // The records before the bad line were decided and written; nothing after it.
    expect(run.stdout.toString()).toBe('{"user_id":"u-1","n":1}\n{"user_id":"u-2","n":2}\n');
    const summary = JSON.parse(run.stderr.trim().split('\n').at(-1)!) as { status: string; read: number; kept: number; dropped: Record<string, number> };
    expect(summary).toMatchObject({ status: 'incomplete', read: 3, kept: 2, dropped: { bad_line: 1 } });
  }, 180_000);

  it('--on-bad-line skip: reports each bad line number, counts them as bad_line, and goes on', async () => {
    const input = '{"user_id":"u-1","n":1}\nnot json at all: jane@example.com\n{"user_id":"u-2","n":3}\n{"user_id":\n{"user_id":"u-1","n":5}\n';
    const run = await runFilter(['--purpose', PURPOSE, '--subject-field', 'user_id', '--db', db, '--on-bad-line', 'skip', '--json'], input, env);
    expect(run.code, run.stderr).toBe(EXIT.ok);
    expect(run.stderr).toContain('line 2 is not valid JSON; skipped');
    expect(run.stderr).toContain('line 4 is not valid JSON; skipped');
    expect(run.stderr).not.toContain('jane@example.com');
    expect(run.stdout.toString()).toBe('{"user_id":"u-1","n":1}\n{"user_id":"u-2","n":3}\n{"user_id":"u-1","n":5}\n');
    const summary = JSON.parse(run.stderr.trim().split('\n').at(-1)!) as { status: string; read: number; kept: number; dropped: Record<string, number> };
    expect(summary).toMatchObject({ status: 'complete', read: 5, kept: 3, dropped: { bad_line: 2 } });
  }, 180_000);

  it('reads a nested subject field (user.id)', async () => {
    const input = '{"user":{"id":"u-1"},"n":1}\n{"user":{"id":"u-3"},"n":2}\n{"user":"u-1"}\n';
    const run = await runFilter(['--purpose', PURPOSE, '--subject-field', 'user.id', '--db', db, '--no-progress'], input, env);
    expect(run.code, run.stderr).toBe(EXIT.ok);
    expect(run.stdout.toString()).toBe('{"user":{"id":"u-1"},"n":1}\n');
  }, 180_000);

  it('unknown purpose: exit 2 with CST_ERR_CONSENT_UNKNOWN_PURPOSE, before reading stdin', async () => {
    const unknown = await runFilter(['--purpose', 'no.such', '--subject-field', 'user_id', '--db', db], '{"user_id":"u-1"}\n', env);
    expect(unknown.code).toBe(EXIT.badInput);
    expect(unknown.stderr).toContain('CST_ERR_CONSENT_UNKNOWN_PURPOSE');
    expect(unknown.stdout.length).toBe(0);
  }, 180_000);

  it('usage errors exit 2 (in process): --db with --url, --url without a key, bad numbers, a bad policy; --help exits 0', async () => {
    const cli = (args: string[]) => runCliCaptured(['filter', ...args], env);
    const both = await cli(['--purpose', PURPOSE, '--subject-field', 'user_id', '--db', db, '--url', 'http://127.0.0.1:9', '--api-key', 'k']);
    expect(both.code).toBe(EXIT.badInput);
    expect(both.stderr).toMatch(/cannot be used with/);
    expect((await cli(['--purpose', PURPOSE, '--subject-field', 'user_id', '--url', 'http://127.0.0.1:9'])).code).toBe(EXIT.badInput);
    expect((await cli(['--purpose', PURPOSE, '--subject-field', 'user_id', '--url', 'ftp://x', '--api-key', 'k'])).code).toBe(EXIT.badInput);
    expect((await cli(['--purpose', PURPOSE, '--subject-field', 'user_id', '--db', db, '--batch', '0'])).code).toBe(EXIT.badInput);
    expect((await cli(['--purpose', PURPOSE, '--subject-field', 'user_id', '--db', db, '--recheck-ms', '-1'])).code).toBe(EXIT.badInput);
    expect((await cli(['--purpose', PURPOSE, '--subject-field', 'user_id', '--db', db, '--on-bad-line', 'ignore'])).code).toBe(EXIT.badInput);
    expect((await cli(['--subject-field', 'user_id', '--db', db])).code).toBe(EXIT.badInput);
    const help = await cli(['--help']);
    expect(help.code).toBe(EXIT.ok);
    expect(help.stdout).toContain('Usage: custodian filter');
  });

  describe('with --url against a server', () => {
    let app: FastifyInstance;
    let baseUrl: string;
    let key: string;
    beforeAll(async () => {
      app = await buildServer(custodian, { logLevel: false });
      await app.listen({ host: '127.0.0.1', port: 0 });
      baseUrl = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
      key = (await custodian.apiKeys.create({ name: 'cli filter', scopes: ['consent:read'], createdBy: 'test' })).secret;
    });
    afterAll(async () => {
      await app?.close();
    });

    it('filters through the HTTP API, with the key from CUSTODIAN_API_KEY', async () => {
      const input = '{"user_id":"u-1"}\n{"user_id":"u-3"}\n{"user_id":"u-2"}\n{"user_id":"u-4"}\n';
      const run = await runFilter(['--purpose', PURPOSE, '--subject-field', 'user_id', '--url', baseUrl], input, { ...env, CUSTODIAN_API_KEY: key });
      expect(run.code, run.stderr).toBe(EXIT.ok);
      expect(run.stdout.toString()).toBe('{"user_id":"u-1"}\n{"user_id":"u-2"}\n');
      const bad = await runFilter(['--purpose', PURPOSE, '--subject-field', 'user_id', '--url', baseUrl, '--api-key', 'cst_wrong_key_000000000000000000'], input, env);
      expect(bad.code).toBe(EXIT.badInput);
      expect(bad.stderr).toContain('CST_ERR_AUTH_INVALID');
    }, 180_000);
  });
});

describe('readJsonlWindows and keptBytes', () => {
  async function* chunked(bytes: Buffer, cuts: readonly number[]): AsyncGenerator<Buffer> {
    let at = 0;
    for (const c of [...cuts].sort((a, b) => a - b)) {
      if (c > at && c < bytes.length) {
        yield bytes.subarray(at, c);
        at = c;
      }
    }
    if (at < bytes.length) yield bytes.subarray(at);
  }

  it('gives every line once, with its value, line number and exact bytes, however the input is cut (property)', async () => {
    const line = fc.oneof(
      fc.record({ user_id: fc.string({ maxLength: 6 }), v: fc.oneof(fc.integer(), fc.string({ maxLength: 8 }), fc.constant('é✓😀')) }).map((o) => JSON.stringify(o)),
      fc.constant(''),
      fc.constant('{"a" : 1 }\r'),
      fc.constant('not json'),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(line, { maxLength: 40 }), fc.boolean(), fc.array(fc.nat(2000), { maxLength: 12 }), fc.integer({ min: 1, max: 7 }), async (lines, finalNewline, cuts, windowSize) => {
        const text = lines.join('\n') + (finalNewline && lines.length > 0 ? '\n' : '');
        const bytes = Buffer.from(text);
        const got: Array<{ n: number; value: unknown; bytes: string }> = [];
        const bad: number[] = [];
        for await (const w of readJsonlWindows(chunked(bytes, cuts), { windowSize, onBadLine: 'skip' })) {
          expect(w.count).toBeLessThanOrEqual(windowSize);
          bad.push(...w.badLines);
          for (let i = 0; i < w.count; i++) got.push({ n: w.lineNumbers[i]!, value: w.values[i], bytes: w.chunks[w.chunkOf[i]!]!.toString('utf8', w.start[i], w.end[i]) });
        }
        const expected: typeof got = [];
        const expectedBad: number[] = [];
        const raw = text.split('\n');
        raw.forEach((l, k) => {
          if (l === '' || l === '\r') return;
          const withNl = k < raw.length - 1 ? `${l}\n` : l;
          try {
            expected.push({ n: k + 1, value: JSON.parse(l), bytes: withNl });
          } catch {
            expectedBad.push(k + 1);
          }
        });
        expect(got).toEqual(expected);
        expect(bad).toEqual(expectedBad);
      }),
      { numRuns: 200 },
    );
  });

  it('keptBytes copies the kept lines in order; fail stops after the window holding the bad line', async () => {
    const input = Buffer.from('{"a":1}\n{"a":2}\n{"a":3}\nbad\n{"a":5}\n');
    const out: string[] = [];
    const err = await (async () => {
      for await (const w of readJsonlWindows(chunked(input, [3, 11, 20]), { windowSize: 10, onBadLine: 'fail' })) {
        out.push(keptBytes(w, new Uint8Array([0, 1, 0]))?.toString() ?? '');
      }
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BadLineError);
    expect((err as BadLineError).lineNumber).toBe(4);
    expect(out).toEqual(['{"a":1}\n{"a":3}\n']);
  });

  it('an overlong line is a bad line and its bytes are not kept', async () => {
    const long = `{"x":"${'y'.repeat(100)}"}`;
    const lines: number[] = [];
    const bad: number[] = [];
    for await (const w of readJsonlWindows(chunked(Buffer.from(`{"a":1}\n${long}\n{"a":3}\n${long}`), [12, 40, 70]), { windowSize: 10, onBadLine: 'skip', maxLineBytes: 50 })) {
      bad.push(...w.badLines);
      for (let i = 0; i < w.count; i++) lines.push(w.lineNumbers[i]!);
    }
    expect(lines).toEqual([1, 3]);
    expect(bad).toEqual([2, 4]);
  });
});
