import { createCipheriv, createDecipheriv, createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** Options of {@link FakeKms.start}. */
export interface FakeKmsOptions {
  /** When set, every request must carry `Authorization: Bearer <token>`, else 401. */
  readonly token?: string;
}

/** Requests received so far, faulted and delayed ones included. */
export interface FakeKmsRequests {
  readonly total: number;
  readonly wrap: number;
  readonly unwrap: number;
}

/** An injected answer, served instead of the real one. */
interface Fault {
  readonly status: number;
  readonly body: string;
  readonly contentType: string;
}

const NONCE = 12;
const TAG = 16;
const MAX_BODY = 1024 * 1024;

class BadRequest extends Error {}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY) req.destroy(new BadRequest('body too large'));
      else chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function field(body: Record<string, unknown>, name: string): Buffer {
  const v = body[name];
  if (typeof v !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(v)) throw new BadRequest(`${name} must be base64`);
  return Buffer.from(v, 'base64');
}

/**
 * A small KMS on 127.0.0.1 speaking the wire contract of `HttpKmsKekProvider` (see the top of
 * `src/crypto/http-kms/http-kms-kek-provider.ts`), for tests that exercise the provider over real HTTP.
 * Each key id gets a random 32-byte key on first use; wrap is AES-256-GCM (nonce ‖ ciphertext ‖ tag) bound to
 * the aad; an unwrap that does not authenticate answers 422. Faults can be injected per request.
 *
 * @example
 * ```ts
 * const kms = await FakeKms.start({ token: 'secret' });
 * kms.failNext(1, 503); // the next request answers 503, the one after is served normally
 * await kms.close();
 * ```
 */
export class FakeKms {
  readonly url: string;
  readonly #server: Server;
  readonly #token: Buffer | undefined;
  readonly #keys = new Map<string, Buffer>();
  readonly #faults: Fault[] = [];
  readonly #delays: number[] = [];
  readonly #closing = new AbortController();
  #requests = { total: 0, wrap: 0, unwrap: 0 };

  private constructor(server: Server, token: string | undefined) {
    this.#server = server;
    this.#token = token === undefined ? undefined : createHash('sha256').update(token).digest();
    const { port } = server.address() as AddressInfo;
    this.url = `http://127.0.0.1:${port}`;
  }

  /** Starts a server on an ephemeral port of 127.0.0.1. */
  static async start(options: FakeKmsOptions = {}): Promise<FakeKms> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const kms = new FakeKms(server, options.token);
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      kms.#handle(req, res).catch(() => {
        if (!res.headersSent && !res.destroyed) res.writeHead(500).end();
      });
    });
    return kms;
  }

  /** Requests received so far. */
  get requests(): FakeKmsRequests {
    return { ...this.#requests };
  }

  /** Resets the request counters to zero and drops injected faults and delays not yet served; keys stay. */
  reset(): void {
    this.#requests = { total: 0, wrap: 0, unwrap: 0 };
    this.#faults.length = 0;
    this.#delays.length = 0;
  }

  /** The next `n` requests answer `status` (with a JSON error body) instead of being served. */
  failNext(n: number, status: number): void {
    this.answerNext(n, status, JSON.stringify({ error: `injected ${status}` }));
  }

  /** The next `n` requests answer `status` with exactly `body`, e.g. a malformed answer. */
  answerNext(n: number, status: number, body: string, contentType = 'application/json'): void {
    for (let i = 0; i < n; i++) this.#faults.push({ status, body, contentType });
  }

  /** The next `n` requests wait `ms` before being answered (or faulted). */
  delayNext(n: number, ms: number): void {
    for (let i = 0; i < n; i++) this.#delays.push(ms);
  }

  /** Stops the server, dropping open connections and pending delays. */
  async close(): Promise<void> {
    this.#closing.abort();
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server.closeAllConnections();
    await closed;
  }

  #key(keyId: string): Buffer {
    let key = this.#keys.get(keyId);
    if (key === undefined) {
      key = randomBytes(32);
      this.#keys.set(keyId, key);
    }
    return key;
  }

  #authorised(req: IncomingMessage): boolean {
    if (this.#token === undefined) return true;
    const header = req.headers.authorization ?? '';
    const given = createHash('sha256').update(header.startsWith('Bearer ') ? header.slice(7) : '\0').digest();
    return timingSafeEqual(given, this.#token);
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const send = (status: number, body: unknown) => {
      if (res.destroyed) return;
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    this.#requests.total++;
    const path = req.url ?? '';
    if (path === '/v1/wrap') this.#requests.wrap++;
    if (path === '/v1/unwrap') this.#requests.unwrap++;
    const raw = await readBody(req);

    const delay = this.#delays.shift();
    if (delay !== undefined) {
      try {
        await sleep(delay, undefined, { signal: this.#closing.signal });
      } catch {
        return;
      }
    }
    const fault = this.#faults.shift();
    if (fault !== undefined) {
      if (!res.destroyed) res.writeHead(fault.status, { 'content-type': fault.contentType }).end(fault.body);
      return;
    }
    if (!this.#authorised(req)) return send(401, { error: 'unauthorised' });
    if (req.method !== 'POST' || (path !== '/v1/wrap' && path !== '/v1/unwrap')) return send(404, { error: 'not found' });

    let keyId: string;
    let aad: Buffer;
    let input: Buffer;
    try {
      const body: unknown = JSON.parse(raw.toString('utf8'));
      if (typeof body !== 'object' || body === null) throw new BadRequest('body must be an object');
      const b = body as Record<string, unknown>;
      if (typeof b.keyId !== 'string' || b.keyId === '') throw new BadRequest('keyId is required');
      keyId = b.keyId;
      aad = field(b, 'aad');
      input = field(b, path === '/v1/wrap' ? 'plaintext' : 'ciphertext');
    } catch (err) {
      return send(400, { error: err instanceof BadRequest ? err.message : 'body must be JSON' });
    }

    const key = this.#key(keyId);
    if (path === '/v1/wrap') {
      const iv = randomBytes(NONCE);
      const cipher = createCipheriv('aes-256-gcm', key, iv).setAAD(aad);
      const ciphertext = Buffer.concat([iv, cipher.update(input), cipher.final(), cipher.getAuthTag()]);
      return send(200, { ciphertext: ciphertext.toString('base64') });
    }
    if (input.length < NONCE + TAG) return send(422, { error: 'ciphertext does not authenticate' });
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, input.subarray(0, NONCE)).setAAD(aad);
      decipher.setAuthTag(input.subarray(input.length - TAG));
      const plaintext = Buffer.concat([decipher.update(input.subarray(NONCE, input.length - TAG)), decipher.final()]);
      return send(200, { plaintext: plaintext.toString('base64') });
    } catch {
      return send(422, { error: 'ciphertext does not authenticate' });
    }
  }
}
