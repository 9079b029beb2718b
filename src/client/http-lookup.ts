import { setTimeout as sleep } from 'node:timers/promises';
import { CustodianError, ERROR_CODES, type ErrorCode } from '../core/index.js';
import { LEDGER_LIMITS } from '../ledger/index.js';
import type { ConsentDecision, ConsentLookup, ConsentLookupCallOptions } from './consent-lookup.js';

/** Options of {@link httpLookup}. */
export interface HttpLookupOptions {
  /** The server's base URL, e.g. `https://custodian.example.com` (routes are under `/v1`). */
  readonly baseUrl: string;
  /** An API key with the `consent:read` scope. */
  readonly apiKey: string;
  /** A `fetch` implementation (default: the global one). */
  readonly fetch?: typeof fetch;
  /** Pairs per request; at most (and default) 10,000, the server's limit. */
  readonly chunkSize?: number;
  /** Attempts per request on network errors, 5xx and 429 answers. Default 5. */
  readonly attempts?: number;
  /** First backoff delay; doubled on each retry, with jitter, capped at 5 s. Default 200 ms. */
  readonly backoffMs?: number;
  /** Per-attempt timeout. Default 30,000 ms. */
  readonly timeoutMs?: number;
}

interface ErrorBody {
  readonly error?: { readonly code?: unknown; readonly message?: unknown };
}

interface CheckBatchBody {
  readonly results?: ReadonlyArray<{ readonly subjectId?: unknown; readonly allowed?: unknown; readonly status?: unknown }>;
}

const MAX_BACKOFF_MS = 5000;

/**
 * A {@link ConsentLookup} over a Custodian server: `POST /v1/consent/check` in chunks of up to 10,000 pairs.
 * Network errors, timeouts, 5xx and 429 answers are retried with exponential backoff; when the attempts run
 * out it fails with `CST_ERR_UNAVAILABLE`. A 4xx answer fails at once with the server's own error code
 * (e.g. `CST_ERR_AUTH_INVALID`, `CST_ERR_CONSENT_UNKNOWN_PURPOSE`); an answer that is not a Custodian
 * answer fails with `CST_ERR_CLIENT_BAD_RESPONSE`. Errors carry the HTTP status, never the ids sent.
 *
 * @example
 * const lookup = httpLookup({ baseUrl: 'https://custodian.example.com', apiKey: process.env.CUSTODIAN_API_KEY! });
 */
export function httpLookup(options: HttpLookupOptions): ConsentLookup {
  const base = options.baseUrl.replace(/\/+$/, '');
  const doFetch = options.fetch ?? fetch;
  const chunkSize = Math.max(1, Math.min(options.chunkSize ?? LEDGER_LIMITS.maxCheckBatch, LEDGER_LIMITS.maxCheckBatch));
  const attempts = Math.max(1, options.attempts ?? 5);
  const backoffMs = options.backoffMs ?? 200;
  const timeoutMs = options.timeoutMs ?? 30_000;
  const headers = { authorization: `Bearer ${options.apiKey}`, 'content-type': 'application/json', accept: 'application/json' };

  async function request(method: 'GET' | 'POST', path: string, body: string | undefined, signal: AbortSignal | undefined): Promise<unknown> {
    let last: { status?: number; reason: string } = { reason: 'no attempt' };
    for (let attempt = 1; attempt <= attempts; attempt++) {
      signal?.throwIfAborted();
      if (attempt > 1) {
        const delay = Math.min(MAX_BACKOFF_MS, backoffMs * 2 ** (attempt - 2));
        // Full jitter: many filters retrying at once do not hit the server in lockstep.
        await sleep(delay / 2 + Math.random() * (delay / 2), undefined, signal === undefined ? undefined : { signal });
      }
      const timeout = AbortSignal.timeout(timeoutMs);
      let res: Response;
      try {
        res = await doFetch(`${base}${path}`, { method, headers, body, signal: signal === undefined ? timeout : AbortSignal.any([signal, timeout]) });
      } catch (err) {
        signal?.throwIfAborted();
        const e = err as { name?: string; cause?: { code?: string } };
        last = { reason: e.name === 'TimeoutError' ? 'timeout' : (e.cause?.code ?? e.name ?? 'network error') };
        continue;
      }
      if (res.status >= 500 || res.status === 429) {
        await res.arrayBuffer().catch(() => undefined);
        last = { status: res.status, reason: 'server error' };
        continue;
      }
      const text = await res.text();
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        throw new CustodianError('CST_ERR_CLIENT_BAD_RESPONSE', 'the server answered with something that is not JSON', { details: { status: res.status } });
      }
      if (res.status >= 400) throw remoteError(res.status, json);
      if (res.status !== 200) throw new CustodianError('CST_ERR_CLIENT_BAD_RESPONSE', 'unexpected status from the server', { details: { status: res.status } });
      return json;
    }
    throw new CustodianError('CST_ERR_UNAVAILABLE', 'the Custodian server did not answer; retry later', { details: { attempts, ...last } });
  }

  return {
    async checkMany(subjectIds, purpose, callOptions?: ConsentLookupCallOptions) {
      const out = new Map<string, ConsentDecision>();
      for (let i = 0; i < subjectIds.length; i += chunkSize) {
        const chunk = subjectIds.slice(i, i + chunkSize);
        const body = JSON.stringify({ checks: chunk.map((subjectId) => ({ subjectId, purpose })) });
        const json = (await request('POST', '/v1/consent/check', body, callOptions?.signal)) as CheckBatchBody;
        const raw: unknown = json.results;
        if (!Array.isArray(raw) || raw.length !== chunk.length) {
          throw new CustodianError('CST_ERR_CLIENT_BAD_RESPONSE', 'the check answer does not have one result per pair', { details: { status: 200 } });
        }
        const results = raw as ReadonlyArray<NonNullable<CheckBatchBody['results']>[number] | null>;
        for (let j = 0; j < chunk.length; j++) {
          const r = results[j]!;
          // Results come in request order; a result for another subject would decide the wrong record.
          if (r == null || r.subjectId !== chunk[j] || typeof r.allowed !== 'boolean' || typeof r.status !== 'string') {
            throw new CustodianError('CST_ERR_CLIENT_BAD_RESPONSE', 'a check result does not match its pair', { details: { index: i + j } });
          }
          out.set(chunk[j]!, { allowed: r.allowed, status: r.status });
        }
      }
      return out;
    },
    async assertPurpose(purpose, callOptions) {
      const json = (await request('GET', '/v1/purposes', undefined, callOptions?.signal)) as { purposes?: ReadonlyArray<{ key?: unknown }> };
      const list: unknown = json.purposes;
      if (!Array.isArray(list)) throw new CustodianError('CST_ERR_CLIENT_BAD_RESPONSE', 'the purposes answer has no list', { details: { status: 200 } });
      if (!(list as ReadonlyArray<{ key?: unknown } | null>).some((p) => p?.key === purpose)) {
        throw new CustodianError('CST_ERR_CONSENT_UNKNOWN_PURPOSE', 'unknown purpose', { details: { purpose, path: 'purpose' } });
      }
    },
  };
}

/** The server's error as a {@link CustodianError} of the same code; its message is the server's (never personal data). */
function remoteError(status: number, json: unknown): CustodianError {
  const err = (json as ErrorBody | null)?.error;
  const code = err?.code;
  if (typeof code === 'string' && Object.hasOwn(ERROR_CODES, code)) {
    return new CustodianError(code as ErrorCode, typeof err?.message === 'string' ? err.message : 'the server refused the request', { details: { status } });
  }
  return new CustodianError('CST_ERR_CLIENT_BAD_RESPONSE', 'the server refused the request with an unknown error', { details: { status } });
}
