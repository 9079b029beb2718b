import type { Command } from 'commander';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createCustodian, loadConfig } from '../../src/app/index.js';
import { EXIT } from '../../src/cli/io.js';
import { buildProgram } from '../../src/cli/program.js';
import { runCliCaptured, type CliRun } from '../support/cli.js';
import { STORE_KINDS, storeFixture, type StoreFixture, type StoreKindUnderTest } from '../support/stores.js';

/* The `custodian` CLI in process, through runCli with captured output, on real stores. */

type Run = CliRun;
const cli = runCliCaptured;

function json<T>(run: Run): T {
  expect(run.code, run.stderr).toBe(EXIT.ok);
  return JSON.parse(run.stdout) as T;
}

interface RecordOutput {
  batchId: string;
  events: Array<{ id: string; subjectId: string; purpose: string; decision: string; method: string; recordedAt: string; expiresAt: string | null; idempotencyKey: string | null; replayed: boolean }>;
}
interface CheckOutput {
  allowed: boolean;
  status: string;
  eventId: string | null;
}
interface StatusOutput {
  subjectId: string;
  purposes: Array<{ purpose: string; status: string; eventId: string | null }>;
}
interface HistoryOutput {
  events: Array<{ id: string; decision: string }>;
  state: Array<{ purpose: string; status: string }>;
  nextCursor: string | null;
}

const COMMANDS = ['serve', 'db', 'consent', 'keys', 'purposes'];
/** Every command path of the real program, so a command added later is covered too. */
function commandPaths(): string[][] {
  const out: string[][] = [];
  const walk = (cmd: Command, prefix: string[]): void => {
    for (const sub of cmd.commands) {
      const path = [...prefix, sub.name()];
      out.push(path);
      walk(sub, path);
    }
  };
  walk(buildProgram({ stdout: () => undefined, stderr: () => undefined, env: {} }, () => undefined), []);
  return out;
}
const SUBCOMMANDS = commandPaths();

describe('custodian --help', () => {
  it('lists every command', async () => {
    const run = await cli(['--help']);
    expect(run.code).toBe(EXIT.ok);
    for (const c of COMMANDS) expect(run.stdout).toMatch(new RegExp(`^\\s+${c}\\b`, 'm'));
  });

  it('knows at least the documented subcommands', () => {
    const names = SUBCOMMANDS.map((p) => p.join(' '));
    for (const c of ['db migrate', 'consent grant', 'consent deny', 'consent withdraw', 'consent status', 'consent history', 'consent check', 'keys create', 'keys list', 'keys revoke', 'purposes list']) {
      expect(names).toContain(c);
    }
  });

  it.each(SUBCOMMANDS.map((path) => [path.join(' '), path] as const))('%s --help exits 0 with its usage', async (_name, path) => {
    const run = await cli([...path, '--help']);
    expect(run.code, run.stderr).toBe(EXIT.ok);
    expect(run.stdout).toContain(`Usage: custodian ${path.join(' ')}`);
    expect(run.stderr).toBe('');
  });

  it('--version prints the version', async () => {
    const run = await cli(['--version']);
    expect(run.code).toBe(EXIT.ok);
    expect(run.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });
});

describe.each(STORE_KINDS)('custodian consent on %s', (kind: StoreKindUnderTest) => {
  let fx: StoreFixture;
  let store: string[];

  beforeAll(async () => {
    fx = await storeFixture(kind);
    store = ['--db', fx.url, '--data-dir', fx.dir];
  });
  afterAll(async () => {
    await fx.cleanup();
  });

  it('grant, check, withdraw, deny, status and history work end to end; check exits 3 when not allowed', async () => {
    const subject = `cli-${kind}-subject-1`;
    const purpose = 'analytics.reporting';

    const none = await cli(['consent', 'check', subject, purpose, ...store]);
    expect(none.code, none.stderr).toBe(EXIT.notAllowed);
    expect(JSON.parse(none.stdout)).toMatchObject({ allowed: false, status: 'none' });

    const granted = json<RecordOutput>(await cli(['consent', 'grant', subject, purpose, '--jurisdiction', 'EU', '--notice-version', 'v1', ...store]));
    expect(granted.events).toHaveLength(1);
    expect(granted.events[0]).toMatchObject({ subjectId: subject, purpose, decision: 'granted', method: 'cli', replayed: false });
    expect(granted.events[0]!.expiresAt).not.toBeNull(); // the purpose's default expiry applies
    const grantId = granted.events[0]!.id;

    const allowed = await cli(['consent', 'check', subject, purpose, ...store]);
    expect(allowed.code, allowed.stderr).toBe(EXIT.ok);
    expect(JSON.parse(allowed.stdout)).toMatchObject({ allowed: true, status: 'granted', eventId: grantId });

    const withdrawn = json<RecordOutput>(await cli(['consent', 'withdraw', subject, purpose, '--method', 'preference_center', ...store]));
    expect(withdrawn.events[0]).toMatchObject({ decision: 'withdrawn', method: 'preference_center' });
    const afterWithdraw = await cli(['consent', 'check', subject, purpose, ...store]);
    expect(afterWithdraw.code).toBe(EXIT.notAllowed);
    expect(JSON.parse(afterWithdraw.stdout)).toMatchObject<Partial<CheckOutput>>({ allowed: false, status: 'withdrawn' });

    const denied = json<RecordOutput>(await cli(['consent', 'deny', subject, 'marketing.advertising', ...store]));
    expect(denied.events[0]).toMatchObject({ decision: 'denied', purpose: 'marketing.advertising' });

    const status = json<StatusOutput>(await cli(['consent', 'status', subject, ...store]));
    expect(status.subjectId).toBe(subject);
    const byPurpose = new Map(status.purposes.map((p) => [p.purpose, p.status]));
    expect(byPurpose.get(purpose)).toBe('withdrawn');
    expect(byPurpose.get('marketing.advertising')).toBe('denied');
    expect(byPurpose.get('personalize')).toBe('none');

    const history = json<HistoryOutput>(await cli(['consent', 'history', subject, '--purpose', purpose, ...store]));
    expect(history.events.map((e) => e.decision)).toEqual(['granted', 'withdrawn']);
    expect(history.state).toEqual([expect.objectContaining({ purpose, status: 'withdrawn' })]);

    const paged = json<HistoryOutput>(await cli(['consent', 'history', subject, '--limit', '1', ...store]));
    expect(paged.events).toHaveLength(1);
    expect(paged.nextCursor).toBe(paged.events[0]!.id);
    // As of the grant's instant (before the withdrawal), the grant was the state.
    const asOf = granted.events[0]!.recordedAt;
    const then = json<HistoryOutput>(await cli(['consent', 'history', subject, '--purpose', purpose, '--as-of', asOf, ...store]));
    expect(then.events.map((e) => e.id)).toEqual([grantId]);
    expect(then.state).toEqual([expect.objectContaining({ purpose, status: 'granted' })]);

    // A purpose on a basis other than consent is allowed without a decision.
    const contract = await cli(['consent', 'check', subject, 'essential.service', ...store]);
    expect(contract.code, contract.stderr).toBe(EXIT.ok);
  });

  it('records an idempotency key once', async () => {
    const args = ['consent', 'grant', `cli-${kind}-subject-2`, 'personalize', '--idempotency-key', 'cli-idem-1', ...store];
    const first = json<RecordOutput>(await cli(args));
    const again = json<RecordOutput>(await cli(args));
    expect(again.events[0]).toMatchObject({ id: first.events[0]!.id, replayed: true });
    const conflict = await cli(['consent', 'deny', `cli-${kind}-subject-2`, 'personalize', '--idempotency-key', 'cli-idem-1', ...store]);
    expect(conflict.code).toBe(EXIT.badInput);
    expect(conflict.stderr).toContain('CST_ERR_CONSENT_IDEMPOTENCY_CONFLICT');
  });

  it('exits 2, not 3, when check names an unknown purpose', async () => {
    const run = await cli(['consent', 'check', `cli-${kind}-subject-1`, 'no.such.purpose', ...store]);
    expect(run.code).toBe(EXIT.badInput);
    expect(run.stderr).toContain('CST_ERR_CONSENT_UNKNOWN_PURPOSE');
    expect(run.stdout).toBe('');
  });
});

describe('custodian on a fresh SQLite store', () => {
  let fx: StoreFixture | undefined;

  afterEach(async () => {
    await fx?.cleanup();
    fx = undefined;
  });

  const fresh = async (): Promise<string[]> => {
    fx = await storeFixture('sqlite');
    return ['--db', fx.url, '--data-dir', fx.dir];
  };

  it('db migrate applies the migrations, then none', async () => {
    const store = await fresh();
    const first = json<{ store: string; applied: string[]; current: string[] }>(await cli(['db', 'migrate', ...store]));
    expect(first.applied.length).toBeGreaterThan(0);
    expect(first.applied).toContain('0001_consent_ledger');
    expect(first.current).toEqual(first.applied);
    expect(first.store).toBe(fx!.url);
    const second = json<{ applied: string[]; current: string[] }>(await cli(['db', 'migrate', ...store]));
    expect(second.applied).toEqual([]);
    expect(second.current).toEqual(first.current);
  });

  it('purposes list shows the default purposes', async () => {
    const store = await fresh();
    const { purposes } = json<{ purposes: Array<{ key: string; legalBasis: string }> }>(await cli(['purposes', 'list', ...store]));
    expect(purposes.map((p) => p.key)).toEqual(expect.arrayContaining(['essential.service', 'analytics.reporting', 'marketing.advertising']));
  });

  it('keys create prints the secret once; keys list never prints it; revoke works once', async () => {
    const store = await fresh();
    const created = json<{ id: string; secret: string; scopes: string[]; name: string }>(await cli(['keys', 'create', '--scopes', 'consent:read', '--name', 'reader', ...store]));
    expect(created.secret).toMatch(/^cst_[A-Za-z0-9_-]{20,}$/);
    expect(created.scopes).toEqual(['consent:read']);

    const listed = await cli(['keys', 'list', ...store]);
    expect(listed.code).toBe(EXIT.ok);
    expect(listed.stdout).not.toContain(created.secret);
    expect(listed.stdout).not.toMatch(/cst_|secret|key_hash/i);
    const { apiKeys } = JSON.parse(listed.stdout) as { apiKeys: Array<{ id: string; name: string; scopes: string[]; revokedAt: string | null }> };
    expect(apiKeys).toEqual([expect.objectContaining({ id: created.id, name: 'reader', scopes: ['consent:read'], revokedAt: null })]);

    // The printed secret is the key: it authenticates with exactly the scopes asked for.
    const c = await createCustodian(loadConfig({}, { dbUrl: fx!.url, dataDir: fx!.dir, logLevel: 'silent' }));
    try {
      expect(await c.apiKeys.authenticate(created.secret)).toMatchObject({ id: created.id, scopes: ['consent:read'] });
    } finally {
      await c.close();
    }

    expect(json<{ revoked: boolean }>(await cli(['keys', 'revoke', created.id, ...store])).revoked).toBe(true);
    const twice = await cli(['keys', 'revoke', created.id, ...store]);
    expect(twice.code).toBe(EXIT.badInput);
    expect(twice.stderr).toContain('CST_ERR_NOT_FOUND');
  });

  it.each([
    ['an unknown purpose', ['consent', 'grant', 'u-1', 'no.such.purpose'], /CST_ERR_CONSENT_UNKNOWN_PURPOSE/],
    ['a malformed --expires-at', ['consent', 'grant', 'u-1', 'analytics.reporting', '--expires-at', 'tomorrow'], /CST_ERR_VALIDATION.*expiresAt/],
    ['an --expires-at in the past', ['consent', 'grant', 'u-1', 'analytics.reporting', '--expires-at', '2001-01-01T00:00:00.000Z'], /CST_ERR_CONSENT_BAD_EXPIRY/],
    ['an unknown --method', ['consent', 'grant', 'u-1', 'analytics.reporting', '--method', 'telepathy'], /--method.*telepathy.*invalid/],
    ['a malformed --as-of', ['consent', 'history', 'u-1', '--as-of', 'yesterday'], /CST_ERR_VALIDATION.*asOf/],
    ['an unknown command', ['frobnicate'], /unknown command 'frobnicate'/],
    ['an unknown subcommand', ['consent', 'frobnicate'], /unknown command 'frobnicate'/],
    ['an unknown option', ['consent', 'status', 'u-1', '--frobnicate'], /unknown option '--frobnicate'/],
    ['a missing purpose', ['consent', 'grant', 'u-1'], /missing required argument 'purpose'/],
    ['a missing subject', ['consent', 'check'], /missing required argument 'subjectId'/],
    ['a missing key id', ['keys', 'revoke'], /missing required argument 'id'/],
    ['unknown --scopes', ['keys', 'create', '--scopes', 'root'], /--scopes.*root.*invalid/],
    ['empty --scopes', ['keys', 'create', '--scopes', ','], /--scopes.*invalid/],
    ['missing --scopes', ['keys', 'create'], /required option '--scopes <list>' not specified/],
    ['an --db of an unsupported kind', ['consent', 'status', 'u-1', '--db', 'mysql://root@127.0.0.1/x'], /CST_ERR_STORE_URL/],
  ] as const)('exits 2 on %s', async (_name, argv, message) => {
    const store = await fresh();
    const hasDb = (argv as readonly string[]).includes('--db');
    const run = await cli([...argv, ...(hasDb ? ['--data-dir', fx!.dir] : store)]);
    expect(run.code, run.stderr).toBe(EXIT.badInput);
    expect(run.stderr).toMatch(message);
    expect(run.stdout).not.toMatch(/"events"/);
  });

  it('a bad input writes nothing to the store', async () => {
    const store = await fresh();
    expect((await cli(['consent', 'grant', 'u-1', 'analytics.reporting', '--expires-at', 'tomorrow', ...store])).code).toBe(EXIT.badInput);
    const status = json<StatusOutput>(await cli(['consent', 'status', 'u-1', ...store]));
    expect(status.purposes.every((p) => p.status === 'none')).toBe(true);
  });
});

describe('custodian and store credentials', () => {
  let fx: StoreFixture | undefined;

  afterEach(async () => {
    await fx?.cleanup();
    fx = undefined;
  });

  const password = 'cli-test-pw-do-not-print';
  const url = `postgres://custodian:${password}@127.0.0.1:1/custodian`;

  it.each([
    ['db migrate', ['db', 'migrate']],
    ['consent status', ['consent', 'status', 'u-1']],
    ['consent check', ['consent', 'check', 'u-1', 'analytics.reporting']],
    ['keys list', ['keys', 'list']],
  ] as const)('%s exits 1 saying the store is unreachable, never printing the password', async (_name, argv) => {
    fx = await storeFixture('sqlite');
    const run = await cli([...argv, '--db', url, '--data-dir', fx.dir]);
    expect(run.code, run.stderr).toBe(EXIT.failure);
    expect(run.stderr).toMatch(/^error\b.*unreachable/m);
    expect(run.stderr + run.stdout).not.toContain(password);
  });

  it('the store URL it prints is redacted', async () => {
    // Trust authentication ignores the password, so this URL works and is echoed by `db migrate`.
    fx = await storeFixture('postgres');
    const withPassword = new URL(fx.url);
    withPassword.password = password;
    const run = await cli(['db', 'migrate', '--db', withPassword.toString(), '--data-dir', fx.dir]);
    expect(run.code, run.stderr).toBe(EXIT.ok);
    expect(run.stdout + run.stderr).not.toContain(password);
    expect((JSON.parse(run.stdout) as { store: string }).store).toContain(':***@');
  });

  it('reads CUSTODIAN_DB when --db is absent', async () => {
    fx = await storeFixture('sqlite');
    const run = await cli(['consent', 'status', 'u-1', '--data-dir', fx.dir], { CUSTODIAN_DB: url });
    expect(run.code).toBe(EXIT.failure);
    expect(run.stderr).not.toContain(password);
  });
});
