import nodemailer from 'nodemailer';
import { CustodianError } from '../../core/index.js';

/** One message to a person: plain text, no attachments. */
export interface MailMessage {
  readonly to: string;
  readonly subject: string;
  readonly text: string;
}

/** The mail port: the outbox dispatcher sends through it. */
export interface Mailer {
  send(message: MailMessage): Promise<void>;
  close(): Promise<void>;
}

/**
 * A mailer over SMTP (nodemailer): `smtp://user:password@host:587` (STARTTLS when offered) or `smtps://…:465`
 * (TLS from the start). `from` is the sender address. Errors name the SMTP stage and code, never the
 * recipient, the message or the password.
 */
export function smtpMailer(url: string, from: string): Mailer {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new CustodianError('CST_ERR_CONFIG', 'CUSTODIAN_SMTP_URL must be smtp://[user:password@]host[:port] or smtps://…', { details: { setting: 'CUSTODIAN_SMTP_URL' } });
  }
  if (parsed.protocol !== 'smtp:' && parsed.protocol !== 'smtps:') {
    throw new CustodianError('CST_ERR_CONFIG', 'CUSTODIAN_SMTP_URL must start with smtp:// or smtps://', { details: { setting: 'CUSTODIAN_SMTP_URL' } });
  }
  const transport = nodemailer.createTransport({
    host: parsed.hostname,
    port: parsed.port === '' ? (parsed.protocol === 'smtps:' ? 465 : 587) : Number(parsed.port),
    secure: parsed.protocol === 'smtps:',
    ...(parsed.username !== '' ? { auth: { user: decodeURIComponent(parsed.username), pass: decodeURIComponent(parsed.password) } } : {}),
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 30_000,
  });
  return {
    async send(message) {
      try {
        await transport.sendMail({ from, to: message.to, subject: message.subject, text: message.text });
      } catch (err) {
        const e = err as { code?: string; responseCode?: number; command?: string };
        throw new CustodianError('CST_ERR_UNAVAILABLE', 'the SMTP server did not accept the message', { details: { code: e.code ?? null, responseCode: e.responseCode ?? null, command: e.command ?? null } });
      }
    },
    async close() {
      transport.close();
      await Promise.resolve();
    },
  };
}
