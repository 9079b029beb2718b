import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { parse as parseYaml } from 'yaml';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Custodian } from '../../src/app/index.js';
import type { MintedApiKey } from '../../src/auth/index.js';
import { ERROR_CODES, LEGAL_BASIS_KEYS } from '../../src/core/index.js';
import { COLLECTION_METHODS, DECISIONS, bannerOptionsFromEnv } from '../../src/ledger/index.js';
import { buildServer } from '../../src/server/index.js';
import { custodianFixture } from '../support/stores.js';

// Throws random input at every route of a real server on a real (SQLite) store, with a valid admin key
// so every request gets past authentication: whatever the input, the answer is never a 5xx, and every
// 4xx has the error shape with a documented CST_ERR_ code.

const NUM_RUNS = 150;

/** Percent-encodes the UTF-8 bytes of `s` (a lone surrogate becomes U+FFFD, as a browser would send it). */
function encode(s: string): string {
  return [...Buffer.from(s, 'utf8')].map((b) => (/[A-Za-z0-9._~-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).padStart(2, '0').toUpperCase()}`)).join('');
}

const printable = fc.stringMatching(/^[\x20-\x7e]{0,60}$/);

/** Any JSON value, and some JavaScript values JSON.stringify renders oddly (lone surrogates, huge numbers). */
const wild: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'grapheme', minLength: 200, maxLength: 3000 }),
  fc.constantFrom(0, -1, 1e308, -0, 2 ** 53 + 1, 1.5, '', ' ', 'null', 'true', '0', '\u0000', '\ud800', '𝔘', 'ß', '%00', 'a'.repeat(257), '2026-02-30T00:00:00Z', '0000-01-01T00:00:00Z'),
);

/** A plausible value sometimes, anything else otherwise. */
const maybe = <T>(good: fc.Arbitrary<T>): fc.Arbitrary<unknown> => fc.oneof({ weight: 2, arbitrary: good }, { weight: 1, arbitrary: wild });
const someKeys = <T extends Record<string, fc.Arbitrary<unknown>>>(model: T) => fc.record(model, { requiredKeys: [] });

const subjectIdArb = fc.oneof(fc.constantFrom('u-1', 'u-2', 'U-1', 'u_%'), fc.string({ unit: 'grapheme', minLength: 1, maxLength: 300 }), fc.string({ unit: 'binary', minLength: 1, maxLength: 20 }));
const purposeArb = fc.oneof(fc.constantFrom('analytics.reporting', 'marketing.advertising', 'essential.service', 'no.such.purpose', 'Bad-Key', 'a.'), fc.stringMatching(/^[a-z][a-z0-9_.]{0,140}$/));
const instantArb = fc.oneof(
  fc.date({ min: new Date('0001-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59Z'), noInvalidDate: true }).map((d) => d.toISOString()),
  fc.constantFrom('2026-03-01T10:00:00+01:00', '2026-03-01T10:00:00.123456789Z', '9999-12-31T23:59:59.999Z', '0001-01-01T00:00:00Z', '2026-03-01T10:00:00', '2026-03-01'),
);
const jurisdictionArb = fc.constantFrom('EU', 'UK', 'US-CA', 'US-CO', 'BR', 'ZZ', 'eu', 'US-', '*');

const eventArb = someKeys({
  subjectId: maybe(subjectIdArb),
  purpose: maybe(purposeArb),
  decision: maybe(fc.constantFrom(...DECISIONS)),
  jurisdiction: maybe(fc.option(jurisdictionArb)),
  noticeVersion: maybe(fc.option(fc.string({ maxLength: 140 }))),
  method: maybe(fc.constantFrom(...COLLECTION_METHODS)),
  clientTime: maybe(fc.option(instantArb)),
  expiresAt: maybe(fc.option(instantArb)),
  evidence: maybe(
    fc.option(
      someKeys({
        ip: maybe(fc.oneof(fc.ipV4(), fc.ipV6(), fc.constantFrom('::ffff:203.0.113.9', 'fe80::1%eth0', '1.2.3'))),
        userAgent: maybe(fc.string({ maxLength: 1100 })),
        pageUrl: maybe(fc.oneof(fc.webUrl({ withQueryParameters: true, withFragments: true }), fc.constantFrom('javascript:alert(1)', 'ftp://example.com/', 'http://'))),
        tcString: maybe(fc.oneof(fc.base64String({ maxLength: 80 }), fc.stringMatching(/^[A-Za-z0-9_-]{1,80}$/))),
        gpc: maybe(fc.boolean()),
      }),
    ),
  ),
  idempotencyKey: maybe(fc.option(fc.string({ unit: 'grapheme', minLength: 0, maxLength: 300 }))),
});

/** An event that passes validation, so the fuzz also reaches the ledger and the store. */
const validEventArb = fc.record(
  {
    subjectId: fc.oneof(fc.constantFrom('u-1', 'u-2', 'U-1', 'u_%'), fc.string({ unit: 'grapheme', minLength: 1, maxLength: 100 })),
    purpose: fc.constantFrom('analytics.reporting', 'marketing.advertising', 'personalize', 'essential.service'),
    decision: fc.constantFrom(...DECISIONS),
    jurisdiction: fc.option(fc.constantFrom('EU', 'UK', 'US-CA', 'BR')),
    method: fc.constantFrom(...COLLECTION_METHODS),
    clientTime: fc.option(instantArb),
    evidence: fc.option(someKeys({ ip: fc.oneof(fc.ipV4(), fc.ipV6()), userAgent: fc.string({ maxLength: 100 }), gpc: fc.boolean() })),
    idempotencyKey: fc.option(fc.string({ minLength: 1, maxLength: 20 })),
  },
  { requiredKeys: ['subjectId', 'purpose', 'decision'] },
);
const validCheckArb = fc.record({ subjectId: fc.constantFrom('u-1', 'u-2', 'U-1', 'u_%'), purpose: fc.constantFrom('analytics.reporting', 'marketing.advertising', 'essential.service') });

const bodies = {
  events: fc.oneof(
    wild,
    someKeys({ events: maybe(fc.array(maybe(eventArb), { maxLength: 6 })), gpc: maybe(fc.boolean()) }),
    { weight: 3, arbitrary: fc.record({ events: fc.array(fc.oneof({ weight: 4, arbitrary: validEventArb }, eventArb), { minLength: 1, maxLength: 6 }), gpc: fc.boolean() }, { requiredKeys: ['events'] }) },
  ),
  checks: fc.oneof(
    wild,
    someKeys({ checks: maybe(fc.array(maybe(someKeys({ subjectId: maybe(subjectIdArb), purpose: maybe(purposeArb) })), { maxLength: 6 })) }),
    { weight: 3, arbitrary: fc.record({ checks: fc.array(fc.oneof({ weight: 4, arbitrary: validCheckArb }, someKeys({ subjectId: wild, purpose: wild })), { minLength: 1, maxLength: 6 }) }) },
  ),
  purpose: fc.oneof(
    wild,
    {
      weight: 2,
      arbitrary: fc.record(
        { title: fc.string({ minLength: 1, maxLength: 50 }), legalBasis: fc.constantFrom(...LEGAL_BASIS_KEYS), consentRequired: fc.boolean(), jurisdictions: fc.array(jurisdictionArb, { minLength: 1, maxLength: 3 }) },
        { requiredKeys: ['title', 'legalBasis'] },
      ),
    },
    someKeys({
      title: maybe(fc.string({ minLength: 0, maxLength: 220 })),
      description: maybe(fc.string({ maxLength: 50 })),
      legalBasis: maybe(fc.constantFrom(...LEGAL_BASIS_KEYS)),
      consentRequired: maybe(fc.boolean()),
      defaultExpiryMonths: maybe(fc.option(fc.integer({ min: -5, max: 200 }))),
      jurisdictions: maybe(fc.array(maybe(jurisdictionArb), { maxLength: 4 })),
      gpcOptOut: maybe(fc.boolean()),
    }),
  ),
  apiKey: fc.oneof(wild, { weight: 2, arbitrary: fc.record({ name: fc.string({ minLength: 1, maxLength: 50 }), scopes: fc.subarray(['consent:read', 'consent:write'] as const, { minLength: 1 }) }) }, someKeys({ name: maybe(fc.string({ maxLength: 220 })), scopes: maybe(fc.array(maybe(fc.constantFrom('admin', 'consent:read', 'consent:write', 'root')), { maxLength: 4 })) })),
  none: fc.oneof({ weight: 3, arbitrary: fc.constant(undefined) }, wild),
};

/** A path parameter: plausible, random Unicode, very long, or raw (possibly malformed) percent-encoding. */
const pathParam = (plausible: fc.Arbitrary<string>) =>
  fc.oneof(
    { weight: 3, arbitrary: plausible.map(encode) },
    fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }).map(encode),
    fc.string({ unit: 'binary', minLength: 1, maxLength: 20 }).map(encode),
    fc.string({ unit: 'grapheme-ascii', minLength: 200, maxLength: 1500 }).map(encode),
    fc.constantFrom('%00', '%ED%A0%80', '%C0%AF', '%', '%zz', '%E2%82', '..', '%2F', '%2e%2e', 'a%20b', '%F0%9F%98%80', '.', '~'),
  );

/** A raw query string: plausible keys with plausible or random values, random keys, repeated keys, or garbage. */
const queryString = (keys: readonly string[], plausible: fc.Arbitrary<string>) =>
  fc.oneof(
    fc
      .array(
        fc.tuple(fc.oneof(fc.constantFrom(...keys, 'extra', ''), fc.string({ unit: 'grapheme', maxLength: 10 })), fc.oneof(plausible, fc.string({ unit: 'grapheme', maxLength: 30 }), fc.string({ unit: 'binary', maxLength: 10 }), fc.string({ minLength: 300, maxLength: 2000 }))),
        { maxLength: 5 },
      )
      .map((pairs) => pairs.map(([k, v]) => `${encode(k)}=${encode(v)}`).join('&')),
    fc.constantFrom('subjectId', 'subjectId=&purpose=', '&&&', '=', '%', 'a=%zz', 'a[b]=1', 'limit=1e3', 'limit=-1', 'limit=0x10', 'asOf=2026-03-01T10:00:00%2B01:00', 'after=%00'),
  );

const headersArb = fc.record(
  {
    // Mostly JSON, so most requests get past the parser; sometimes anything else.
    'content-type': fc.oneof(
      { weight: 8, arbitrary: fc.constant('application/json') },
      fc.constantFrom('application/json; charset=utf-8', 'APPLICATION/JSON', 'application/json; charset=latin1', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/octet-stream', '*/*', ''),
      printable,
    ),
    'sec-gpc': fc.oneof(fc.constantFrom('1', '0', 'true', ''), printable),
    accept: fc.oneof(fc.constantFrom('application/json', 'text/html', '*/*', 'application/xml'), printable),
  },
  { requiredKeys: ['content-type'] },
);

interface Route {
  readonly method: InjectOptions['method'];
  readonly path: string;
  readonly url: fc.Arbitrary<string>;
  readonly body: fc.Arbitrary<unknown>;
}

/** A query string of the route's own parameters with plausible values: gets past validation more often. */
const plausibleQuery = (model: Record<string, fc.Arbitrary<string>>, requiredKeys: string[] = []) =>
  fc.record(model, { requiredKeys }).map((q) => Object.entries(q).map(([k, v]) => `${k}=${encode(v)}`).join('&'));
const historyQuery = fc.oneof(
  queryString(['purpose', 'asOf', 'limit', 'after'], fc.oneof(purposeArb, instantArb, fc.integer({ min: -2, max: 2000 }).map(String), fc.uuid())),
  { weight: 2, arbitrary: plausibleQuery({ purpose: fc.constantFrom('analytics.reporting', 'personalize'), asOf: instantArb, limit: fc.integer({ min: 0, max: 1001 }).map(String), after: fc.uuid() }) },
);
const checkQuery = fc.oneof(
  queryString(['subjectId', 'purpose'], fc.oneof(subjectIdArb, purposeArb)),
  { weight: 2, arbitrary: plausibleQuery({ subjectId: subjectIdArb, purpose: purposeArb }, ['subjectId', 'purpose']) },
);
const anyQuery = queryString(['q'], fc.string({ maxLength: 20 }));
const withQuery = (path: fc.Arbitrary<string>, query: fc.Arbitrary<string>) => fc.tuple(path, fc.option(query)).map(([p, q]) => (q === null ? p : `${p}?${q}`));

const ROUTES: readonly Route[] = [
  { method: 'POST', path: '/v1/consent/events', url: withQuery(fc.constant('/v1/consent/events'), anyQuery), body: bodies.events },
  { method: 'GET', path: '/v1/subjects/:subjectId/consent', url: withQuery(pathParam(subjectIdArb).map((s) => `/v1/subjects/${s}/consent`), anyQuery), body: bodies.none },
  {
    method: 'GET',
    path: '/v1/subjects/:subjectId/consent/history',
    url: withQuery(pathParam(subjectIdArb).map((s) => `/v1/subjects/${s}/consent/history`), historyQuery),
    body: bodies.none,
  },
  { method: 'GET', path: '/v1/consent/check', url: withQuery(fc.constant('/v1/consent/check'), checkQuery), body: bodies.none },
  {
    method: 'GET',
    path: '/v1/consent/snapshot',
    url: withQuery(
      fc.constant('/v1/consent/snapshot'),
      queryString(['purpose', 'after', 'limit'], fc.oneof(purposeArb, fc.integer({ min: -2, max: 20_000 }).map(String), fc.base64String({ maxLength: 60 }), fc.constant('WyJhIiwiYiIsM10'))),
    ),
    body: bodies.none,
  },
  { method: 'POST', path: '/v1/consent/check', url: withQuery(fc.constant('/v1/consent/check'), anyQuery), body: bodies.checks },
  { method: 'GET', path: '/v1/purposes', url: withQuery(fc.constant('/v1/purposes'), anyQuery), body: bodies.none },
  { method: 'PUT', path: '/v1/purposes/:key', url: withQuery(pathParam(purposeArb).map((k) => `/v1/purposes/${k}`), anyQuery), body: bodies.purpose },
  { method: 'POST', path: '/v1/api-keys', url: withQuery(fc.constant('/v1/api-keys'), anyQuery), body: bodies.apiKey },
  { method: 'GET', path: '/v1/api-keys', url: withQuery(fc.constant('/v1/api-keys'), anyQuery), body: bodies.none },
  { method: 'GET', path: '/v1/me', url: withQuery(fc.constant('/v1/me'), anyQuery), body: bodies.none },
  { method: 'DELETE', path: '/v1/api-keys/:id', url: withQuery(pathParam(fc.uuid()).map((id) => `/v1/api-keys/${id}`), anyQuery), body: bodies.none },
  { method: 'GET', path: '/healthz', url: withQuery(fc.constant('/healthz'), anyQuery), body: bodies.none },
  ...bannerRoutes(),
  ...cryptoRoutes(),
  ...incidentFuzzRoutes(),
];

/** Incident routes: plausible incidents (dates, counts, keys) mixed with wild JSON; ids mostly unknown. */
function incidentFuzzRoutes(): Route[] {
  const incidentId = fc.oneof(fc.uuid(), fc.constantFrom('x', '0'));
  const incident = fc.record(
    {
      title: fc.oneof(fc.string({ maxLength: 220 }), fc.constant('Stolen laptop')),
      description: fc.string({ maxLength: 300 }),
      detectedAt: fc.oneof(instantArb, fc.constant('2099-01-01T00:00:00.000Z')),
      occurredAt: fc.option(instantArb),
      systems: fc.array(fc.string({ maxLength: 20 }), { maxLength: 3 }),
      collections: fc.array(fc.constantFrom('a.b', 'x', 'shop_db.customers'), { maxLength: 3 }),
      dataCategories: fc.array(fc.constantFrom('user.contact.email', 'user.health_and_medical', 'user.nope', ''), { maxLength: 3 }),
      affectedCount: fc.option(fc.oneof(fc.integer({ min: -5, max: 1_000_000 }), fc.double())),
      encrypted: fc.boolean(),
      keysCompromised: fc.boolean(),
      jurisdictions: fc.array(fc.constantFrom('EU', 'UK', 'BR', 'US-TX', 'eu', 'XX'), { maxLength: 3 }),
      status: fc.constantFrom('open', 'suspected', 'closed'),
    },
    { requiredKeys: ['title'] },
  );
  const byId = (suffix: string) => withQuery(pathParam(incidentId).map((id) => `/v1/incidents/${id}${suffix}`), anyQuery);
  return [
    { method: 'POST', path: '/v1/incidents', url: withQuery(fc.constant('/v1/incidents'), anyQuery), body: fc.oneof(wild, { weight: 4, arbitrary: incident }) },
    { method: 'GET', path: '/v1/incidents', url: withQuery(fc.constant('/v1/incidents'), queryString(['status', 'limit'], fc.constantFrom('open', 'x', '5', '-1'))), body: bodies.none },
    { method: 'GET', path: '/v1/incidents/:id', url: byId(''), body: bodies.none },
    { method: 'PATCH', path: '/v1/incidents/:id', url: byId(''), body: fc.oneof(wild, incident) },
    { method: 'POST', path: '/v1/incidents/:id/assessment', url: byId('/assessment'), body: fc.oneof(wild, fc.record({ outcome: fc.constantFrom('none', 'authority', 'x'), justification: fc.string({ maxLength: 50 }) })) },
    { method: 'GET', path: '/v1/incidents/:id/affected-subjects', url: withQuery(pathParam(incidentId).map((id) => `/v1/incidents/${id}/affected-subjects`), queryString(['from', 'to'], fc.oneof(instantArb, fc.string({ maxLength: 10 })))), body: bodies.none },
    { method: 'GET', path: '/v1/incidents/:id/notifications/drafts', url: byId('/notifications/drafts'), body: bodies.none },
    { method: 'POST', path: '/v1/incidents/:id/notifications', url: byId('/notifications'), body: fc.oneof(wild, fc.record({ audience: fc.constantFrom('authority', 'individuals', 'csirt', 'x'), to: fc.array(fc.oneof(fc.emailAddress(), fc.string({ maxLength: 20 })), { maxLength: 3 }) })) },
  ];
}

/** Banner routes: plausible choices (anonymous ids, purposes, jurisdictions) mixed with wild JSON; public ones are rate-limited. */
function bannerRoutes(): Route[] {
  const anonId = fc.oneof(fc.uuid({ version: 4 }).map((u) => `anon-${u}`), fc.constantFrom('anon-x', 'user-1', ''), subjectIdArb);
  const choice = fc.record(
    {
      anonymousId: anonId,
      jurisdiction: fc.constantFrom('EU', 'UK', 'US-CA', 'eu', 'XX', ''),
      noticeVersion: fc.oneof(fc.constantFrom('v1', 'auto-0123456789abcdef', ''), fc.string({ maxLength: 140 })),
      choices: fc.dictionary(fc.oneof(purposeArb, fc.constantFrom('analytics.reporting', 'marketing.advertising', 'essential.service')), fc.oneof({ weight: 4, arbitrary: fc.boolean() }, wild), { maxKeys: 6 }),
      pageUrl: fc.oneof(fc.constantFrom('https://shop.example.com/a?b=c', 'javascript:x', 'ftp://x.test/'), fc.webUrl()),
      gpc: fc.boolean(),
      submissionId: fc.oneof(fc.uuid(), fc.constant('x')),
    },
    { requiredKeys: ['anonymousId', 'noticeVersion', 'choices'] },
  );
  return [
    { method: 'GET', path: '/v1/banner/experience', url: withQuery(fc.constant('/v1/banner/experience'), queryString(['jurisdiction'], fc.constantFrom('EU', 'US-CA', 'eu', 'XX-YYYY', ''))), body: bodies.none },
    { method: 'POST', path: '/v1/banner/consent', url: withQuery(fc.constant('/v1/banner/consent'), anyQuery), body: fc.oneof(wild, { weight: 4, arbitrary: choice }) },
    { method: 'POST', path: '/v1/consent/link', url: withQuery(fc.constant('/v1/consent/link'), anyQuery), body: fc.oneof(wild, { weight: 3, arbitrary: fc.record({ anonymousId: anonId, subjectId: subjectIdArb }) }) },
  ];
}

/** Crypto routes: plausible items (so many get through to the keyring) mixed with wild JSON. */
function cryptoRoutes(): Route[] {
  const ctx = fc.oneof(fc.string({ minLength: 1, maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 10 }), fc.constant(''));
  const ct = fc.oneof(fc.string(), fc.base64String().map((b) => `c1.${b.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')}`), fc.constantFrom('c1.', 'c2.AAAA', 'c1.AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'));
  const encrypt = fc.record({ subjectId: subjectIdArb, plaintext: fc.string({ maxLength: 200 }), context: ctx });
  const decrypt = fc.record({ ciphertext: ct, context: ctx });
  const index = fc.record({ value: fc.string({ maxLength: 100 }), index: fc.constantFrom('email', 'phone', 'nope', 'Bad Name', '') });
  const one = <T,>(item: fc.Arbitrary<T>) => fc.oneof(wild, { weight: 3, arbitrary: item });
  const batch = <T,>(item: fc.Arbitrary<T>) => fc.oneof(wild, { weight: 3, arbitrary: fc.record({ items: fc.array(fc.oneof(item, wild), { maxLength: 5 }) }) });
  const post = (path: string, body: fc.Arbitrary<unknown>): Route => ({ method: 'POST', path, url: withQuery(fc.constant(path), anyQuery), body });
  return [
    post('/v1/crypto/encrypt', one(encrypt)),
    post('/v1/crypto/decrypt', one(decrypt)),
    post('/v1/crypto/blind-index', one(index)),
    post('/v1/crypto/encrypt/batch', batch(encrypt)),
    post('/v1/crypto/decrypt/batch', batch(decrypt)),
    post('/v1/crypto/blind-index/batch', batch(index)),
    { method: 'PUT', path: '/v1/crypto/blind-indexes/:name', url: withQuery(pathParam(fc.constantFrom('email', 'customer_no', 'x')).map((n) => `/v1/crypto/blind-indexes/${n}`), anyQuery), body: one(fc.record({ normaliser: fc.constantFrom('email', 'exact', 'nope'), bits: fc.integer({ min: 0, max: 300 }) })) },
    { method: 'GET', path: '/v1/crypto/status', url: withQuery(fc.constant('/v1/crypto/status'), anyQuery), body: bodies.none },
    { method: 'GET', path: '/v1/audit', url: withQuery(fc.constant('/v1/audit'), queryString(['subjectId', 'action', 'from', 'to', 'cursor', 'limit'], fc.oneof(subjectIdArb, instantArb, fc.uuid(), fc.constantFrom('consent.recorded', 'nope', '0', '2000')))), body: bodies.none },
    { method: 'GET', path: '/v1/audit/checkpoint', url: withQuery(fc.constant('/v1/audit/checkpoint'), queryString(['tree'], fc.constantFrom('audit', 'consent', 'x'))), body: bodies.none },
    { method: 'GET', path: '/v1/audit/entries/:seq/proof', url: withQuery(pathParam(fc.oneof(fc.nat(50).map(String), fc.constantFrom('-1', '1e9', 'x'))).map((s) => `/v1/audit/entries/${s}/proof`), queryString(['tree'], fc.constantFrom('audit', 'consent', 'x'))), body: bodies.none },
    { method: 'POST', path: '/v1/audit/verify', url: withQuery(fc.constant('/v1/audit/verify'), queryString(['tree'], fc.constantFrom('audit', 'consent', 'x'))), body: bodies.none },
    { method: 'GET', path: '/v1/audit/consistency', url: withQuery(fc.constant('/v1/audit/consistency'), queryString(['tree', 'from', 'to'], fc.oneof(fc.nat(60).map(String), fc.constantFrom('-1', 'x', '1e20', 'consent')))), body: bodies.none },
    { method: 'GET', path: '/v1/consent/events/:id/proof', url: withQuery(pathParam(fc.uuid()).map((id) => `/v1/consent/events/${id}/proof`), anyQuery), body: bodies.none },
    ...datamapRoutes(),
    ...requestRoutes(),
    ...eventRoutes(),
    { method: 'POST', path: '/v1/subjects/:subjectId/shred', url: withQuery(pathParam(subjectIdArb).map((s) => `/v1/subjects/${s}/shred`), anyQuery), body: one(fc.record({ reason: fc.string({ maxLength: 600 }) })) },
  ];
}

/** Data map routes: manifests that are nearly valid (a real example with one thing broken) mixed with wild JSON. */
function datamapRoutes(): Route[] {
  const example = parseYaml(readFileSync('examples/shop/custodian.yaml', 'utf8')) as Record<string, unknown>;
  // Replace one value somewhere in the example by something arbitrary: deep paths reach the semantic checks.
  const mutated = fc.tuple(fc.nat(), fc.oneof(wild, fc.string(), fc.constant(null), fc.integer())).map(([seed, value]) => {
    const copy = structuredClone(example);
    const slots: Array<[Record<string, unknown>, string]> = [];
    const walk = (node: unknown) => {
      if (node === null || typeof node !== 'object') return;
      for (const [k, v] of Object.entries(node)) {
        slots.push([node as Record<string, unknown>, k]);
        walk(v);
      }
    };
    walk(copy);
    const [parent, key] = slots[seed % slots.length]!;
    parent[key] = value;
    return copy;
  });
  const manifestBody = fc.oneof(wild, fc.record({ manifest: fc.oneof(mutated, wild), baseVersion: fc.oneof(fc.nat(3), fc.constant(-1)) }, { requiredKeys: ['manifest'] }));
  const get = (path: string, query: fc.Arbitrary<string>): Route => ({ method: 'GET', path, url: withQuery(fc.constant(path), query), body: bodies.none });
  const num = fc.oneof(fc.nat(5).map(String), fc.constantFrom('-1', 'x', '1e99'));
  return [
    { method: 'PUT', path: '/v1/datamap', url: withQuery(fc.constant('/v1/datamap'), anyQuery), body: manifestBody },
    { method: 'POST', path: '/v1/datamap/validate', url: withQuery(fc.constant('/v1/datamap/validate'), anyQuery), body: manifestBody },
    get('/v1/datamap', queryString(['version'], num)),
    get('/v1/datamap/versions', anyQuery),
    get('/v1/datamap/diff', queryString(['from', 'to'], num)),
    get('/v1/datamap/schema', anyQuery),
    get('/v1/datamap/graph', queryString(['format'], fc.constantFrom('json', 'svg', 'png'))),
    get('/v1/reports/consent-rates', queryString(['from', 'to', 'bucket'], fc.oneof(instantArb, fc.constantFrom('day', 'month', 'week', 'x')))),
    get('/v1/reports/ropa', queryString(['format', 'regime'], fc.constantFrom('json', 'csv', 'html', 'EU', 'UK', 'pdf'))),
    get('/v1/reports/dpia', anyQuery),
    get('/v1/reports/transfers', queryString(['regime'], fc.constantFrom('EU', 'UK', 'US'))),
    ...retentionRoutes(),
  ];
}

/** Retention routes: runs (dry and real: the example's systems are unreachable, so nothing is touched), holds, report. */
function retentionRoutes(): Route[] {
  const idArb = fc.oneof(fc.uuid(), fc.constantFrom('x', '0190a000-0000-7000-8000-000000000000'));
  const runBody = fc.record({ dryRun: fc.oneof(fc.boolean(), fc.constantFrom('yes', 1)), system: fc.constantFrom('shop', 'helpdesk', 'nope', '', "x' OR 1=1") }, { requiredKeys: [] });
  const holdBody = fc.record(
    {
      scope: fc.constantFrom('subject', 'system', 'collection', 'everything'),
      identity: fc.record({ kind: fc.constantFrom('email', 'user_id', 'shoe_size', ''), value: fc.oneof(fc.constantFrom('ada@example.com', "x' OR 1=1 --", ''), fc.string({ maxLength: 40 })) }, { requiredKeys: [] }),
      system: fc.constantFrom('shop', 'nope', ''),
      collection: fc.constantFrom('shop_db.customers', 'x.y', '', '../..'),
      reason: fc.string({ maxLength: 1200 }),
      until: fc.oneof(instantArb, fc.constantFrom('2020-01-01T00:00:00.000Z', '2999-01-01T00:00:00.000Z', 'tomorrow')),
    },
    { requiredKeys: ['scope', 'reason'] },
  );
  return [
    { method: 'POST', path: '/v1/retention/runs', url: withQuery(fc.constant('/v1/retention/runs'), anyQuery), body: fc.oneof(wild, { weight: 3, arbitrary: runBody }) },
    { method: 'GET', path: '/v1/retention/runs', url: withQuery(fc.constant('/v1/retention/runs'), queryString(['limit'], fc.constantFrom('1', '100', '0', '-1', 'x'))), body: bodies.none },
    { method: 'GET', path: '/v1/retention/runs/:id', url: withQuery(pathParam(idArb).map((id) => `/v1/retention/runs/${id}`), anyQuery), body: bodies.none },
    { method: 'GET', path: '/v1/reports/retention', url: withQuery(fc.constant('/v1/reports/retention'), queryString(['horizonDays'], fc.constantFrom('1', '30', '366', '0', '367', 'x'))), body: bodies.none },
    { method: 'GET', path: '/v1/legal-holds', url: withQuery(fc.constant('/v1/legal-holds'), queryString(['active'], fc.constantFrom('true', 'false', 'x'))), body: bodies.none },
    { method: 'POST', path: '/v1/legal-holds', url: withQuery(fc.constant('/v1/legal-holds'), anyQuery), body: fc.oneof(wild, { weight: 3, arbitrary: holdBody }) },
    { method: 'DELETE', path: '/v1/legal-holds/:id', url: withQuery(pathParam(idArb).map((id) => `/v1/legal-holds/${id}`), anyQuery), body: bodies.none },
  ];
}

/** Request routes: plausible intakes (real types, jurisdictions, identity shapes, injection values) and wild JSON. */
function requestRoutes(): Route[] {
  const identity = fc.oneof(fc.constantFrom('ada@example.com', "x' OR 1=1 --", '*', '../../etc/passwd', '+44 20 7946 0000', ''), fc.string({ maxLength: 40 }));
  const intake = fc.record(
    {
      type: fc.constantFrom('access', 'portability', 'erasure', 'rectification', 'restriction', 'objection', 'opt_out', 'delete_everything'),
      jurisdiction: fc.constantFrom('EU', 'UK', 'US-CA', 'US-VA', 'BR', 'CA', 'DE', 'XX', 'eu', ''),
      identities: fc.dictionary(fc.constantFrom('email', 'phone', 'userId', 'user_id', 'shoe_size', ''), fc.oneof(identity, fc.array(identity, { maxLength: 12 }))),
      authenticated: fc.boolean(),
    },
    { requiredKeys: ['type', 'jurisdiction', 'identities'] },
  );
  const idArb = fc.oneof(fc.uuid(), fc.constantFrom('x', '0190a000-0000-7000-8000-000000000000'));
  const action = (path: string, body: fc.Arbitrary<unknown>): Route => ({
    method: 'POST',
    path: `/v1/requests/:id/${path}`,
    url: withQuery(pathParam(idArb).map((id) => `/v1/requests/${id}/${path}`), anyQuery),
    body: fc.oneof(wild, body),
  });
  return [
    { method: 'POST', path: '/v1/requests', url: withQuery(fc.constant('/v1/requests'), anyQuery), body: fc.oneof(wild, { weight: 4, arbitrary: intake }) },
    { method: 'GET', path: '/v1/requests', url: withQuery(fc.constant('/v1/requests'), queryString(['status', 'type', 'jurisdiction', 'dueBefore', 'overdue', 'dueWithinDays', 'limit'], fc.oneof(instantArb, fc.constantFrom('in_progress', 'access', 'EU', 'true', '7', '-1', 'x')))), body: bodies.none },
    { method: 'GET', path: '/v1/requests/:id', url: withQuery(pathParam(idArb).map((id) => `/v1/requests/${id}`), anyQuery), body: bodies.none },
    { method: 'GET', path: '/v1/requests/:id/tasks', url: withQuery(pathParam(idArb).map((id) => `/v1/requests/${id}/tasks`), anyQuery), body: bodies.none },
    { method: 'GET', path: '/v1/requests/:id/package', url: withQuery(pathParam(idArb).map((id) => `/v1/requests/${id}/package`), anyQuery), body: bodies.none },
    { method: 'GET', path: '/v1/requests/:id/certificate', url: withQuery(pathParam(idArb).map((id) => `/v1/requests/${id}/certificate`), anyQuery), body: bodies.none },
    action('package-link', fc.record({ ttlMinutes: fc.oneof(fc.integer({ min: -5, max: 20_000 }), fc.double()) }, { requiredKeys: [] })),
    { method: 'GET', path: '/downloads/packages/:token', url: withQuery(pathParam(fc.oneof(fc.string({ maxLength: 80 }), fc.constantFrom('a.b.c', '0190a000-0000-7000-8000-000000000000.99999999999999.00', '..'))).map((t) => `/downloads/packages/${t}`), anyQuery), body: bodies.none },
    action('verify', fc.record({ code: fc.oneof(fc.stringMatching(/^\d{6}$/), fc.string({ maxLength: 20 })) })),
    action('approve', fc.record({ reason: fc.string({ maxLength: 1200 }) }, { requiredKeys: [] })),
    action('reject', fc.record({ reason: fc.string({ maxLength: 1200 }) })),
    action('extend', fc.record({ reason: fc.string({ maxLength: 1200 }) })),
    { method: 'GET', path: '/v1/restrictions/:subjectId', url: withQuery(pathParam(subjectIdArb).map((s) => `/v1/restrictions/${s}`), anyQuery), body: bodies.none },
    {
      method: 'POST',
      path: '/v1/restrictions/:subjectId/lift',
      url: withQuery(pathParam(subjectIdArb).map((s) => `/v1/restrictions/${s}/lift`), anyQuery),
      body: fc.oneof(wild, { weight: 3, arbitrary: fc.record({ reason: fc.oneof(fc.constantFrom('accuracy_verified', 'subject_consent', 'accuracy_contested', ''), fc.string({ maxLength: 80 })) }) }),
    },
  ];
}

/** Event routes: subscriptions of every kind (valid, nearly valid, hostile URLs), delivery queries, replays, the outbox. */
function eventRoutes(): Route[] {
  const idArb = fc.oneof(fc.uuid(), fc.constantFrom('x', '0190a000-0000-7000-8000-000000000000'));
  const url = fc.oneof(fc.constantFrom('https://hooks.example.com/x', 'http://127.0.0.1:9/x', 'nats://127.0.0.1:4222', 'redis://:pw@127.0.0.1:6379/0', 'ftp://example.com', 'javascript:alert(1)', '', 'http://'), fc.webUrl(), fc.string({ maxLength: 40 }));
  const subscription = fc.record(
    {
      name: fc.oneof(fc.constantFrom('crm', ''), fc.string({ maxLength: 220 })),
      target: fc.record(
        { kind: fc.constantFrom('webhook', 'nats', 'redis', 'smtp', ''), url, secret: fc.oneof(fc.constantFrom('a-secret-of-sufficient-length'), fc.string({ maxLength: 30 })), timeoutMs: fc.oneof(fc.integer({ min: -1, max: 200_000 }), fc.double()), stream: fc.string({ maxLength: 10 }), maxLen: fc.integer({ min: -1, max: 10 }) },
        { requiredKeys: ['kind', 'url'] },
      ),
      types: fc.array(fc.constantFrom('consent.granted', 'subject.erased', 'nope', ''), { maxLength: 4 }),
      purposes: fc.array(fc.oneof(purposeArb, fc.string({ maxLength: 10 })), { maxLength: 3 }),
      maxAttempts: fc.oneof(fc.integer({ min: -1, max: 200 }), fc.double()),
    },
    { requiredKeys: ['name', 'target'] },
  );
  const replay = fc.record({ fromSeq: fc.oneof(fc.integer({ min: -1, max: 100 }), fc.double(), fc.constant('1')), fromTime: fc.oneof(instantArb, fc.constantFrom('yesterday', '')) }, { requiredKeys: [] });
  const sub = (suffix: string) => pathParam(idArb).map((id) => `/v1/events/subscriptions/${id}${suffix}`);
  return [
    { method: 'GET', path: '/v1/events', url: withQuery(fc.constant('/v1/events'), queryString(['after', 'limit'], fc.constantFrom('0', '1', '1000', '1001', '-1', 'x', '1e3'))), body: bodies.none },
    { method: 'GET', path: '/v1/events/subscriptions', url: withQuery(fc.constant('/v1/events/subscriptions'), anyQuery), body: bodies.none },
    { method: 'POST', path: '/v1/events/subscriptions', url: withQuery(fc.constant('/v1/events/subscriptions'), anyQuery), body: fc.oneof(wild, { weight: 4, arbitrary: subscription }) },
    { method: 'GET', path: '/v1/events/subscriptions/:id', url: withQuery(sub(''), anyQuery), body: bodies.none },
    { method: 'DELETE', path: '/v1/events/subscriptions/:id', url: withQuery(sub(''), anyQuery), body: bodies.none },
    { method: 'GET', path: '/v1/events/subscriptions/:id/deliveries', url: withQuery(sub('/deliveries'), queryString(['status', 'before', 'limit'], fc.constantFrom('pending', 'dead', 'x', '1', '0', '-1', '1001'))), body: bodies.none },
    { method: 'POST', path: '/v1/events/subscriptions/:id/replay', url: withQuery(sub('/replay'), anyQuery), body: fc.oneof(wild, { weight: 3, arbitrary: replay }) },
  ];
}

/** Asserts the answer is not a server fault, and that a caller fault has the documented error shape. */
function expectSound(res: LightMyRequestResponse, context: string): void {
  expect(res.statusCode, `${context} → ${res.statusCode} ${res.body.slice(0, 500)}`).toBeLessThan(500);
  if (res.statusCode >= 400) {
    const body = res.json<{ error: { code: string; message: string } }>();
    expect(Object.keys(body), context).toEqual(['error']);
    expect(Object.keys(body.error).every((k) => ['code', 'message', 'details'].includes(k)), context).toBe(true);
    expect(body.error.code, context).toMatch(/^CST_ERR_/);
    expect(ERROR_CODES[body.error.code as keyof typeof ERROR_CODES]?.status, context).toBe(res.statusCode);
    expect(typeof body.error.message, context).toBe('string');
  } else if (res.statusCode !== 204 && String(res.headers['content-type']).startsWith('application/json')) {
    expect(() => res.json<unknown>(), context).not.toThrow();
  }
  expect(res.body).not.toContain('request_hash');
  expect(res.body).not.toContain('key_hash');
}

describe('HTTP API fuzz (sqlite)', () => {
  let custodian: Custodian;
  let app: FastifyInstance;
  let cleanup: () => Promise<void>;
  let admin: MintedApiKey;

  beforeAll(async () => {
    // A bucket the fuzz cannot empty, so banner requests reach validation and the ledger instead of 429.
    const f = await custodianFixture('sqlite', { config: { banner: bannerOptionsFromEnv({ CUSTODIAN_BANNER_RATE_BURST: '1000000' }) } });
    custodian = f.custodian;
    cleanup = f.cleanup;
    app = await buildServer(custodian, { logLevel: false });
    admin = await custodian.apiKeys.create({ name: 'fuzz admin', scopes: ['admin'], createdBy: 'test' });
    // A stored data map, so that the report routes do their work instead of answering 404.
    await custodian.datamap.put(parseYaml(readFileSync('examples/shop/custodian.yaml', 'utf8')), { actor: 'test' });
  });

  afterAll(async () => {
    await custodian?.retention.idle();
    await app?.close();
    await cleanup?.();
  });

  it.each(ROUTES)('$method $path never answers 5xx, and every 4xx has the error shape', async (route) => {
    await fc.assert(
      fc.asyncProperty(route.url, route.body, headersArb, fc.boolean(), async (url, body, headers, raw) => {
        // Mostly JSON; sometimes the body is sent as raw text to exercise the parsers.
        const payload = body === undefined ? undefined : raw && typeof body === 'string' ? body : JSON.stringify(body);
        // A request without a body mostly comes without a content type (Fastify refuses an empty JSON body).
        const { 'content-type': _contentType, ...rest } = headers;
        const sent = payload === undefined && !raw ? rest : headers;
        const res = await app.inject({
          method: route.method,
          url,
          headers: { ...sent, authorization: `Bearer ${admin.secret}` },
          ...(payload === undefined ? {} : { payload }),
        });
        expectSound(res, `${route.method} ${url} ${JSON.stringify(sent)} ${payload?.slice(0, 300) ?? ''}`);
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('the admin key survived the fuzz, so every request above was authenticated', async () => {
    const res = await app.inject({ method: 'GET', url: '/v1/api-keys', headers: { authorization: `Bearer ${admin.secret}` } });
    expect(res.statusCode).toBe(200);
  });
});
