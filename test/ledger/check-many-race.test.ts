import type { KyselyPlugin, PluginTransformQueryArgs, PluginTransformResultArgs, QueryResult, RootOperationNode, UnknownRow } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Custodian } from '../../src/app/index.js';
import { ConsentLedger } from '../../src/ledger/index.js';
import type { ChangeListener } from '../../src/store/index.js';
import { custodianFixture } from '../support/stores.js';

/*
 * A batch check must not lose a cached subject when a change notice evicts it while the batch waits for the
 * store to load other subjects. The notice is delivered exactly then, from a Kysely plugin on the reads.
 */
describe('batch checks and change notices', () => {
  let c: Custodian;
  let cleanup: () => Promise<void>;
  let ledger: ConsentLedger;
  let listener: ChangeListener | undefined;
  let onRead: (() => void) | undefined;

  beforeAll(async () => {
    ({ custodian: c, cleanup } = await custodianFixture('sqlite'));
    const plugin: KyselyPlugin = {
      transformQuery: (args: PluginTransformQueryArgs): RootOperationNode => args.node,
      transformResult: async (args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> => {
        const hook = onRead;
        onRead = undefined;
        hook?.();
        return Promise.resolve(args.result);
      },
    };
    const real = c.store;
    // The same store, with reads observed and the change feed under the test's control.
    const store = new Proxy(real, {
      get(target, prop) {
        if (prop === 'db') return target.db.withPlugin(plugin);
        if (prop === 'watchChanges') {
          return (l: ChangeListener) => {
            listener = l;
            return Promise.resolve({ healthy: true, stop: () => Promise.resolve() });
          };
        }
        const value: unknown = Reflect.get(target, prop, target);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    ledger = new ConsentLedger({ store, purposes: c.purposes, clock: c.clock, cipher: c.keyring, audit: c.audit });
    await ledger.watch();
  });
  afterAll(async () => {
    await ledger?.stopWatching();
    await cleanup?.();
  });

  it('keeps a cached grant when a notice evicts it during the batch read', async () => {
    await c.ledger.record([{ subjectId: 'race-a', purpose: 'analytics.reporting', decision: 'granted' }], { actor: 'test' });
    expect((await ledger.check('race-a', 'analytics.reporting')).status).toBe('granted'); // now cached
    // While the batch loads the uncached subject, a notice (about race-a, e.g. an idempotent replay) evicts race-a.
    onRead = () => listener!('consent', ['race-a']);
    const [a, b] = await ledger.checkMany([
      { subjectId: 'race-a', purpose: 'analytics.reporting' },
      { subjectId: 'race-b', purpose: 'analytics.reporting' },
    ]);
    expect(onRead).toBeUndefined(); // the notice was delivered during the read
    expect(a).toMatchObject({ subjectId: 'race-a', status: 'granted', allowed: true });
    expect(b).toMatchObject({ subjectId: 'race-b', status: 'none', allowed: false });
  });
});
