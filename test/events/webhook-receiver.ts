import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { verifyWebhook } from '../../src/events/index.js';

/** How the receiver answers right now. */
export type ReceiverMode = { kind: 'ok' } | { kind: 'slow'; ms: number } | { kind: 'status'; status: number };

/** One request the receiver got (whatever it answered). */
export interface Received {
  readonly id: string;
  readonly seq: number;
  readonly subject: string | undefined;
  readonly type: string;
  readonly body: string;
  readonly verified: boolean;
  readonly contentType: string | undefined;
  /** The status answered (for slow answers: 200, possibly after the sender gave up). */
  readonly status: number;
}

/**
 * A real webhook receiver on a free local port: can be taken down (connections refused) and brought back up on
 * the same port, answer slowly, or answer a status. Records every request with whether its signature verified.
 */
export interface WebhookReceiver {
  readonly url: string;
  readonly received: Received[];
  mode: ReceiverMode;
  /** Requests being answered right now (slow mode). */
  inFlight: number;
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

export async function startWebhookReceiver(secret: () => string | undefined): Promise<WebhookReceiver> {
  let port = 0;
  let server: Server | undefined;
  const received: Received[] = [];
  const state: { mode: ReceiverMode; inFlight: number } = { mode: { kind: 'ok' }, inFlight: 0 };
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const s = secret();
      const verified = s !== undefined && verifyWebhook({ secret: s, headers: req.headers, body }).ok;
      const event = JSON.parse(body) as { id: string; sequence: string; subject?: string; type: string };
      const mode = state.mode;
      const status = mode.kind === 'status' ? mode.status : 200;
      const record = () => received.push({ id: event.id, seq: Number(event.sequence), subject: event.subject, type: event.type, body, verified, contentType: req.headers['content-type'], status });
      if (mode.kind === 'slow') {
        state.inFlight++;
        setTimeout(() => {
          state.inFlight--;
          record();
          if (!res.destroyed) res.writeHead(200).end();
        }, mode.ms);
        return;
      }
      record();
      res.writeHead(status).end();
    });
  };
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      const s = createServer(handle);
      s.keepAliveTimeout = 100;
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => {
        port = (s.address() as AddressInfo).port;
        server = s;
        resolve();
      });
    });
  const stop = async () => {
    const s = server;
    server = undefined;
    if (s === undefined) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  };
  await listen();
  return {
    url: `http://127.0.0.1:${port}/hook`,
    received,
    get mode() {
      return state.mode;
    },
    set mode(m: ReceiverMode) {
      state.mode = m;
    },
    get inFlight() {
      return state.inFlight;
    },
    set inFlight(n: number) {
      state.inFlight = n;
    },
    down: stop,
    up: listen,
    close: stop,
  };
}

/** Resolves when `check` holds, polling every 25 ms; rejects after `timeoutMs`. */
export async function until(check: () => boolean | Promise<boolean>, timeoutMs = 20_000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * Checks the receiver's log against the outbox: every event arrived (answered 2xx), the first arrival of each
 * subject's events follows outbox order, and a duplicate is always the same event (same id, same body).
 */
export function checkDelivery(received: readonly Received[], expected: ReadonlyArray<{ id: string; sequence: string; subject?: string }>): { duplicates: number } {
  const accepted = new Set(received.filter((r) => r.status >= 200 && r.status < 300).map((r) => r.id));
  const missing = expected.filter((e) => !accepted.has(e.id)).map((e) => e.sequence);
  if (missing.length > 0) throw new Error(`events never delivered: ${missing.join(',')}`);
  const bodies = new Map<string, string>();
  let duplicates = 0;
  const firstSeqBySubject = new Map<string, number>();
  for (const r of received) {
    if (!r.verified) throw new Error(`request ${r.id} failed signature verification`);
    const seen = bodies.get(r.id);
    if (seen !== undefined) {
      duplicates++;
      if (seen !== r.body) throw new Error(`duplicate ${r.id} with a different body`);
      continue;
    }
    bodies.set(r.id, r.body);
    if (r.subject === undefined) continue;
    const last = firstSeqBySubject.get(r.subject) ?? 0;
    if (r.seq < last) throw new Error(`subject ${r.subject}: event ${r.seq} arrived after ${last}`);
    firstSeqBySubject.set(r.subject, r.seq);
  }
  return { duplicates };
}
