import { join } from 'node:path';
import { CustodianError } from '../core/index.js';
import { DEFAULT_STORE_URL } from '../store/index.js';
import { bannerOptionsFromEnv, type BannerOptions, type ConsentLedgerOptions } from '../ledger/index.js';
import type { AuditLogOptions } from '../audit/index.js';

/** Everything Custodian needs to start. Frozen once built. */
export interface CustodianConfig {
  /** Store URL: `sqlite:<path>` or `postgres://…`. */
  readonly dbUrl: string;
  /** Folder of local state (dev master key, default SQLite file). */
  readonly dataDir: string;
  /** Base64 master key from CUSTODIAN_MASTER_KEY; wins over the file. */
  readonly masterKey: string | undefined;
  readonly masterKeyFile: string;
  /** Generate a dev master key file when none exists (never in production). */
  readonly generateDevMasterKey: boolean;
  /** CUSTODIAN_ADMIN_KEY: becomes the first admin key when the store has none. */
  readonly adminKey: string | undefined;
  readonly host: string;
  readonly port: number;
  readonly logLevel: string;
  readonly ledger: ConsentLedgerOptions;
  /** Audit log: checkpoint origin and how often signed heads are produced. */
  readonly audit: AuditLogOptions;
  /** External KMS for master keys (CUSTODIAN_KMS_URL, CUSTODIAN_KMS_TOKEN, CUSTODIAN_KMS_KEYS); unset = local master key. */
  readonly kms: { readonly url?: string | undefined; readonly token?: string | undefined; readonly keys?: string | undefined };
  /** Run pending migrations when starting. Default true. */
  readonly migrateOnStart: boolean;
  /** Outgoing mail (verification codes): SMTP when CUSTODIAN_SMTP_URL is set; otherwise the outbox only (dev sink). */
  readonly mail: { readonly smtpUrl?: string | undefined; readonly from: string };
  /** The public consent banner API (CUSTODIAN_BANNER_*): CORS origins, geo header, rate limit; see docs/banner.md. */
  readonly banner: BannerOptions;
  /**
   * The privacy center at `/privacy` (docs/privacy-center.md): branding file (CUSTODIAN_PRIVACY_CENTER_CONFIG),
   * session lifetime (CUSTODIAN_PRIVACY_CENTER_SESSION_MINUTES), where the built page lives (default dist/web/privacy).
   */
  readonly privacyCenter: { readonly configFile?: string | undefined; readonly sessionMinutes: number; readonly webDir?: string | undefined };
  /** Where `${VAR}` references in data map connections are resolved (the process environment). */
  readonly env: Readonly<Record<string, string | undefined>>;
}

/** Overrides of {@link loadConfig}, e.g. from CLI flags. */
export type ConfigOverrides = Partial<Omit<CustodianConfig, 'ledger' | 'audit' | 'mail'>> & { mail?: CustodianConfig['mail'] } & { ledger?: ConsentLedgerOptions; audit?: AuditLogOptions };

/** A checkpoint origin / signed-note key name: printable ASCII without spaces or '+' (C2SP signed-note). */
function checkOrigin(value: string): string {
  if (!/^[\x21-\x2a\x2c-\x7e]{1,200}$/.test(value)) {
    throw new CustodianError('CST_ERR_CONFIG', 'CUSTODIAN_LOG_ORIGIN must be printable ASCII without spaces or "+", e.g. custodian.example.com', { details: { setting: 'CUSTODIAN_LOG_ORIGIN' } });
  }
  return value;
}

function positiveInt(value: string | undefined, fallback: number, setting: string): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new CustodianError('CST_ERR_CONFIG', `${setting} must be a positive whole number`, { details: { setting } });
  return n;
}

function parsePort(value: string | number | undefined, fallback: number): number {
  if (value === undefined || value === '') return fallback;
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new CustodianError('CST_ERR_CONFIG', 'port must be a whole number from 0 to 65535', { details: { setting: 'port' } });
  return n;
}

/**
 * Builds the configuration from the environment and overrides:
 * CUSTODIAN_DB, CUSTODIAN_DATA_DIR, CUSTODIAN_MASTER_KEY, CUSTODIAN_MASTER_KEY_FILE, CUSTODIAN_ADMIN_KEY,
 * CUSTODIAN_HOST, CUSTODIAN_PORT, CUSTODIAN_LOG_LEVEL, CUSTODIAN_TRUNCATE_IP, CUSTODIAN_GPC_EVERYWHERE,
 * CUSTODIAN_KMS_URL, CUSTODIAN_KMS_TOKEN, CUSTODIAN_KMS_KEYS, CUSTODIAN_LOG_ORIGIN, CUSTODIAN_CHECKPOINT_EVERY_MS,
 * CUSTODIAN_CHECKPOINT_EVERY_ENTRIES.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: ConfigOverrides = {}): CustodianConfig {
  const dataDir = overrides.dataDir ?? env.CUSTODIAN_DATA_DIR ?? '.custodian';
  const production = env.NODE_ENV === 'production';
  const defaultDb = dataDir === '.custodian' ? DEFAULT_STORE_URL : `sqlite:${join(dataDir, 'custodian.db')}`;
  const bool = (v: string | undefined, fallback: boolean) => (v === undefined || v === '' ? fallback : !['0', 'false', 'no', 'off'].includes(v.toLowerCase()));
  return Object.freeze({
    dbUrl: overrides.dbUrl ?? env.CUSTODIAN_DB ?? defaultDb,
    dataDir,
    masterKey: overrides.masterKey ?? env.CUSTODIAN_MASTER_KEY,
    masterKeyFile: overrides.masterKeyFile ?? env.CUSTODIAN_MASTER_KEY_FILE ?? join(dataDir, 'master.key'),
    generateDevMasterKey: overrides.generateDevMasterKey ?? !production,
    adminKey: overrides.adminKey ?? (env.CUSTODIAN_ADMIN_KEY || undefined),
    host: overrides.host ?? env.CUSTODIAN_HOST ?? '127.0.0.1',
    port: parsePort(overrides.port ?? env.CUSTODIAN_PORT, 8080),
    logLevel: overrides.logLevel ?? env.CUSTODIAN_LOG_LEVEL ?? 'info',
    migrateOnStart: overrides.migrateOnStart ?? true,
    env: Object.freeze({ ...(overrides.env ?? env) }),
    privacyCenter: Object.freeze(
      overrides.privacyCenter ?? {
        configFile: env.CUSTODIAN_PRIVACY_CENTER_CONFIG || undefined,
        sessionMinutes: positiveInt(env.CUSTODIAN_PRIVACY_CENTER_SESSION_MINUTES, 30, 'CUSTODIAN_PRIVACY_CENTER_SESSION_MINUTES'),
      },
    ),
    mail: Object.freeze(overrides.mail ?? { smtpUrl: env.CUSTODIAN_SMTP_URL || undefined, from: env.CUSTODIAN_MAIL_FROM ?? 'privacy@localhost' }),
    audit: Object.freeze({
      origin: checkOrigin(env.CUSTODIAN_LOG_ORIGIN ?? 'custodian'),
      checkpointEveryMs: positiveInt(env.CUSTODIAN_CHECKPOINT_EVERY_MS, 10_000, 'CUSTODIAN_CHECKPOINT_EVERY_MS'),
      checkpointEveryEntries: positiveInt(env.CUSTODIAN_CHECKPOINT_EVERY_ENTRIES, 1000, 'CUSTODIAN_CHECKPOINT_EVERY_ENTRIES'),
      ...overrides.audit,
    }),
    kms: Object.freeze(overrides.kms ?? { url: env.CUSTODIAN_KMS_URL, token: env.CUSTODIAN_KMS_TOKEN, keys: env.CUSTODIAN_KMS_KEYS }),
    banner: overrides.banner ?? bannerOptionsFromEnv(env),
    ledger: Object.freeze({
      truncateIp: bool(env.CUSTODIAN_TRUNCATE_IP, true),
      gpcEverywhere: bool(env.CUSTODIAN_GPC_EVERYWHERE, false),
      ...overrides.ledger,
    }),
  });
}
