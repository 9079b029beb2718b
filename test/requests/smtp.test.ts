import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Custodian } from '../../src/app/index.js';
import { smtpMailer } from '../../src/connectors/mail/smtp-mailer.js';
import { isCustodianError } from '../../src/core/index.js';
import { custodianFixture } from '../support/stores.js';

/**
 * A minimal SMTP server (RFC 5321 subset: EHLO/HELO, MAIL, RCPT, DATA, QUIT, RSET, NOOP) that keeps what it
 * receives, so the SMTP mailer is tested over a real TCP connection. `refuse` makes it answer 451 to DATA.
 */
async function smtpSink(): Promise<{ port: number; messages: Array<{ from: string; to: string[]; data: string }>; refuse: (on: boolean) => void; close: () => Promise<void> }> {
  const messages: Array<{ from: string; to: string[]; data: string }> = [];
  let refusing = false;
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    let buffer = '';
    let inData = false;
    let from = '';
    let to: string[] = [];
    let data = '';
    const reply = (line: string) => socket.write(line + '\r\n');
    reply('220 sink.test ESMTP');
    socket.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('utf8');
      let at: number;
      while ((at = buffer.indexOf('\r\n')) >= 0) {
        const line = buffer.slice(0, at);
        buffer = buffer.slice(at + 2);
        if (inData) {
          if (line === '.') {
            inData = false;
            if (refusing) reply('451 4.3.0 try again later');
            else {
              messages.push({ from, to, data });
              reply('250 2.0.0 queued');
            }
            from = '';
            to = [];
            data = '';
          } else data += (line.startsWith('..') ? line.slice(1) : line) + '\n';
          continue;
        }
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'EHLO') reply('250-sink.test\r\n250 8BITMIME');
        else if (verb === 'HELO') reply('250 sink.test');
        else if (verb === 'MAIL') {
          from = /<([^>]*)>/.exec(line)?.[1] ?? '';
          reply('250 2.1.0 ok');
        } else if (verb === 'RCPT') {
          to.push(/<([^>]*)>/.exec(line)?.[1] ?? '');
          reply('250 2.1.5 ok');
        } else if (verb === 'DATA') {
          inData = true;
          reply('354 end with .');
        } else if (verb === 'QUIT') {
          reply('221 bye');
          socket.end();
        } else if (verb === 'RSET' || verb === 'NOOP') reply('250 ok');
        else reply('502 5.5.2 not implemented');
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    messages,
    refuse: (on) => void (refusing = on),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

describe('verification codes over SMTP', () => {
  let c: Custodian;
  let cleanup: () => Promise<void>;
  let sink: Awaited<ReturnType<typeof smtpSink>>;

  beforeAll(async () => {
    sink = await smtpSink();
    ({ custodian: c, cleanup } = await custodianFixture('sqlite', { config: { mail: { smtpUrl: `smtp://127.0.0.1:${sink.port}`, from: 'privacy@shop.example' } } }));
  });
  afterAll(async () => {
    await cleanup();
    await sink.close();
  });

  it('delivers each outbox message once, and retries what the server refused', async () => {
    const r = await c.requests.create({ type: 'access', jurisdiction: 'EU', identities: { email: 'ada@example.com' }, actor: 'test' });
    sink.refuse(true);
    expect(await c.requests.dispatchOutbox(c.mailer!)).toEqual({ sent: 0, failed: 1 });
    sink.refuse(false);
    expect(await c.requests.dispatchOutbox(c.mailer!)).toEqual({ sent: 1, failed: 0 });
    expect(await c.requests.dispatchOutbox(c.mailer!)).toEqual({ sent: 0, failed: 0 }); // once
    expect(sink.messages).toHaveLength(1);
    const [m] = sink.messages;
    expect(m).toMatchObject({ from: 'privacy@shop.example', to: ['ada@example.com'] });
    expect(m!.data).toMatch(/Subject: Your verification code/);
    const code = /\b(\d{6})\b/.exec(m!.data)![1]!;
    expect((await c.requests.verify(r.id, code, 'test')).status).toBe('in_progress');
  });

  it('refuses a malformed SMTP URL with a configuration error', () => {
    for (const url of ['not a url', 'http://mail.example']) {
      let err: unknown;
      try {
        smtpMailer(url, 'x@example.com');
      } catch (e) {
        err = e;
      }
      expect(isCustodianError(err) && err.code).toBe('CST_ERR_CONFIG');
    }
  });
});
