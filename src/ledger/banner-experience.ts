import { createHash } from 'node:crypto';
import { CustodianError, JURISDICTIONS, JURISDICTION_CODE_PATTERN, honoursGpc, type LegalBasis, type Purpose } from '../core/index.js';
import type { ConsentLedger } from './consent-ledger.js';
import { offeredIn } from './purpose-registry.js';
import type { ConsentEventInput, PurposeState, RecordResult } from './types.js';

/** Google Consent Mode v2 signals the banner sets (`gtag('consent', …)`). */
export const CONSENT_MODE_SIGNALS = ['ad_storage', 'analytics_storage', 'ad_user_data', 'ad_personalization'] as const;
export type ConsentModeSignal = (typeof CONSENT_MODE_SIGNALS)[number];

/**
 * Default mapping of purposes to Consent Mode signals, by purpose-key prefix (fideslang data uses): a signal is
 * granted when every offered purpose under one of its prefixes is granted, and denied otherwise (also when no
 * offered purpose matches).
 */
export const DEFAULT_CONSENT_MODE_MAPPING: Readonly<Record<ConsentModeSignal, readonly string[]>> = Object.freeze({
  ad_storage: ['marketing.advertising'],
  analytics_storage: ['analytics'],
  ad_user_data: ['marketing.advertising'],
  ad_personalization: ['marketing.advertising'],
});

/** Configuration of the public banner API (`CUSTODIAN_BANNER_*`), frozen with the rest of the config. */
export interface BannerOptions {
  /** Web origins allowed to call the banner API from a browser (CORS); the server's own origin always is. */
  readonly allowedOrigins: readonly string[];
  /** A request header set by a CDN or proxy that holds the visitor's country or jurisdiction, e.g. `cf-ipcountry`. */
  readonly geoHeader: string | undefined;
  /** A header with the ISO 3166-2 region of the visitor (e.g. `cf-region-code`: `CA`), combined with a `US` country. */
  readonly geoRegionHeader: string | undefined;
  /** The jurisdiction when none is given or derived; the strictest regime by default. */
  readonly defaultJurisdiction: string;
  /** The notice version shown; unset = derived from the content of the notice (it changes when a purpose changes). */
  readonly noticeVersion: string | undefined;
  /** A header holding the client address set by a trusted proxy (e.g. `cf-connecting-ip`), for rate limiting. */
  readonly ipHeader: string | undefined;
  /** Token bucket per client address: refill per minute and capacity. */
  readonly rateLimit: { readonly perMinute: number; readonly burst: number };
  /** Purpose-key prefixes per Consent Mode signal. */
  readonly consentMode: Readonly<Record<ConsentModeSignal, readonly string[]>>;
}

/**
 * Reads {@link BannerOptions} from CUSTODIAN_BANNER_ALLOWED_ORIGINS (comma-separated origins),
 * CUSTODIAN_BANNER_GEO_HEADER, CUSTODIAN_BANNER_GEO_REGION_HEADER, CUSTODIAN_BANNER_DEFAULT_JURISDICTION (default EU),
 * CUSTODIAN_BANNER_NOTICE_VERSION, CUSTODIAN_BANNER_IP_HEADER, CUSTODIAN_BANNER_RATE_LIMIT (per minute, default 60),
 * CUSTODIAN_BANNER_RATE_BURST (default 30) and CUSTODIAN_BANNER_CONSENT_MODE (JSON: signal → prefixes).
 */
export function bannerOptionsFromEnv(env: Readonly<Record<string, string | undefined>>): BannerOptions {
  const bad = (setting: string, message: string): never => {
    throw new CustodianError('CST_ERR_CONFIG', `${setting} ${message}`, { details: { setting } });
  };
  const origins = (env.CUSTODIAN_BANNER_ALLOWED_ORIGINS ?? '')
    .split(',')
    .map((o) => o.trim())
    .filter((o) => o !== '')
    .map((o) => {
      let url: URL;
      try {
        url = new URL(o);
      } catch {
        return bad('CUSTODIAN_BANNER_ALLOWED_ORIGINS', 'must list origins such as https://shop.example.com');
      }
      if ((url.protocol !== 'https:' && url.protocol !== 'http:') || url.origin !== o.replace(/\/$/, '')) bad('CUSTODIAN_BANNER_ALLOWED_ORIGINS', 'must list origins such as https://shop.example.com (no path)');
      return url.origin;
    });
  const header = (name: string): string | undefined => {
    const v = env[name]?.trim().toLowerCase();
    if (v === undefined || v === '') return undefined;
    if (!/^[a-z0-9-]{1,100}$/.test(v)) bad(name, 'must be an HTTP header name');
    return v;
  };
  const count = (name: string, fallback: number): number => {
    const v = env[name];
    if (v === undefined || v === '') return fallback;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1 || n > 1_000_000) bad(name, 'must be a whole number from 1 to 1000000');
    return n;
  };
  const defaultJurisdiction = env.CUSTODIAN_BANNER_DEFAULT_JURISDICTION || 'EU';
  if (!JURISDICTION_CODE_PATTERN.test(defaultJurisdiction)) bad('CUSTODIAN_BANNER_DEFAULT_JURISDICTION', 'must be a jurisdiction code such as EU, UK, US-CA');
  const noticeVersion = env.CUSTODIAN_BANNER_NOTICE_VERSION || undefined;
  if (noticeVersion !== undefined && !/^[\x21-\x7e]{1,64}$/.test(noticeVersion)) bad('CUSTODIAN_BANNER_NOTICE_VERSION', 'must be 1-64 printable ASCII characters');
  let consentMode = DEFAULT_CONSENT_MODE_MAPPING;
  if (env.CUSTODIAN_BANNER_CONSENT_MODE) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(env.CUSTODIAN_BANNER_CONSENT_MODE);
    } catch {
      parsed = undefined;
    }
    const ok =
      parsed !== null &&
      typeof parsed === 'object' &&
      Object.entries(parsed).every(([k, v]) => (CONSENT_MODE_SIGNALS as readonly string[]).includes(k) && Array.isArray(v) && v.every((p) => typeof p === 'string' && p.length > 0));
    if (!ok) bad('CUSTODIAN_BANNER_CONSENT_MODE', 'must be a JSON object of Consent Mode signal → list of purpose-key prefixes');
    consentMode = Object.freeze({ ...DEFAULT_CONSENT_MODE_MAPPING, ...(parsed as Record<ConsentModeSignal, string[]>) });
  }
  return Object.freeze({
    allowedOrigins: Object.freeze(origins),
    geoHeader: header('CUSTODIAN_BANNER_GEO_HEADER'),
    geoRegionHeader: header('CUSTODIAN_BANNER_GEO_REGION_HEADER'),
    defaultJurisdiction,
    noticeVersion,
    ipHeader: header('CUSTODIAN_BANNER_IP_HEADER'),
    rateLimit: Object.freeze({ perMinute: count('CUSTODIAN_BANNER_RATE_LIMIT', 60), burst: count('CUSTODIAN_BANNER_RATE_BURST', 30) }),
    consentMode,
  });
}

// EEA member states (GDPR applies through the EEA Agreement to IS, LI, NO).
const EEA = new Set('AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE IS LI NO'.split(' '));

/**
 * The jurisdiction of a visitor from a CDN geo header: a jurisdiction code as is (`US-CA`, `EU`), an EEA country
 * as `EU`, `GB` as `UK`, `US` plus a region header as `US-<region>` when that state is known. Anything unusable
 * (`XX`, `T1` for Tor, empty) is undefined, and the caller falls back to its default.
 */
export function jurisdictionFromGeo(country: string | undefined, region?: string): string | undefined {
  const c = country?.trim().toUpperCase();
  if (c === undefined || c === '' || !JURISDICTION_CODE_PATTERN.test(c) || c === 'XX' || c === 'T1') return undefined;
  if (JURISDICTIONS.has(c) && c !== 'US') return c;
  if (EEA.has(c)) return 'EU';
  if (c === 'GB') return 'UK';
  if (c === 'US') {
    const r = region?.trim().toUpperCase();
    const code = r !== undefined && /^[A-Z0-9]{1,3}$/.test(r) ? `US-${r}` : undefined;
    return code !== undefined && JURISDICTIONS.has(code) ? code : 'US';
  }
  return c;
}

/**
 * The kind of banner a jurisdiction needs. `opt_in`: nothing that needs consent runs before the visitor agrees
 * (ePrivacy Directive Art. 5(3), GDPR Art. 6(1)(a) and 7). `opt_out`: US state laws let processing start and
 * give the right to opt out of sale, sharing and targeted advertising (e.g. Cal. Civ. Code §1798.120, §1798.135).
 * Unknown jurisdictions get `opt_in`, the safer choice.
 */
export type ExperienceType = 'opt_in' | 'opt_out';

/** See {@link ExperienceType}. */
export function experienceTypeFor(jurisdiction: string): ExperienceType {
  return jurisdiction === 'US' || jurisdiction.startsWith('US-') ? 'opt_out' : 'opt_in';
}

/** A purpose as the banner shows it. */
export interface BannerPurpose {
  readonly key: string;
  readonly title: string;
  readonly description: string;
  readonly legalBasis: LegalBasis;
  readonly gpcOptOut: boolean;
  /** Grants expire after this many months; null = no expiry. */
  readonly expiryMonths: number | null;
  /** The choice before the visitor makes one: false in `opt_in`; true in `opt_out`. */
  readonly defaultGranted: boolean;
}

/** What the banner needs to render for one jurisdiction. */
export interface BannerExperience {
  readonly jurisdiction: string;
  readonly type: ExperienceType;
  readonly noticeVersion: string;
  /** Whether a GPC signal is a legally binding opt-out here (or CUSTODIAN_GPC_EVERYWHERE is set). */
  readonly gpcHonoured: boolean;
  readonly purposes: readonly BannerPurpose[];
  readonly consentMode: Readonly<Record<ConsentModeSignal, readonly string[]>>;
}

/**
 * The banner experience for `jurisdiction`: the purposes offered there that need consent or allow an opt-out,
 * in key order, with a notice version that changes whenever what the visitor is told changes. O(P log P).
 */
export function bannerExperience(purposes: readonly Purpose[], jurisdiction: string, options: { noticeVersion?: string | undefined; gpcEverywhere?: boolean; consentMode?: BannerOptions['consentMode'] } = {}): BannerExperience {
  const type = experienceTypeFor(jurisdiction);
  const shown = purposes
    .filter((p) => offeredIn(p, jurisdiction) && (p.consentRequired || p.gpcOptOut))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    .map(
      (p): BannerPurpose => ({
        key: p.key,
        title: p.title,
        description: p.description,
        legalBasis: p.legalBasis,
        gpcOptOut: p.gpcOptOut,
        expiryMonths: p.defaultExpiryMonths,
        defaultGranted: type === 'opt_out',
      }),
    );
  const noticeVersion = options.noticeVersion ?? `auto-${createHash('sha256').update(JSON.stringify([jurisdiction, type, shown])).digest('hex').slice(0, 16)}`;
  return {
    jurisdiction,
    type,
    noticeVersion,
    gpcHonoured: options.gpcEverywhere === true || honoursGpc(jurisdiction),
    purposes: shown,
    consentMode: options.consentMode ?? DEFAULT_CONSENT_MODE_MAPPING,
  };
}

/** The format of an anonymous banner subject id: `anon-` and a random (v4) UUID, lower case. */
export const ANONYMOUS_SUBJECT_PATTERN = /^anon-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** The answer to {@link linkAnonymousChoices}. */
export interface LinkResult {
  readonly anonymousId: string;
  readonly subjectId: string;
  readonly events: RecordResult['events'];
  /** Purposes not copied: no decision, expired, or the subject decided later themselves. */
  readonly skipped: ReadonlyArray<{ readonly purpose: string; readonly reason: 'no_decision' | 'expired' | 'subject_decided_later' }>;
}

/**
 * Copies the current banner choices of an anonymous subject to a known subject (on login), as new events with
 * method `banner`. Each copy keeps the decision, jurisdiction, notice version, expiry and evidence of the
 * anonymous event, and its idempotency key `link:<anonymous event id>:<hash of the subject id>` references it,
 * so linking twice records once. A purpose the subject decided after the anonymous choice is left alone.
 * Reading the anonymous events' evidence is audited (`consent.history.read`) with `ctx.purpose` when stated.
 */
export async function linkAnonymousChoices(
  ledger: ConsentLedger,
  anonymousId: string,
  subjectId: string,
  ctx: { actor: string; requestId?: string; purpose?: string },
): Promise<LinkResult> {
  if (!ANONYMOUS_SUBJECT_PATTERN.test(anonymousId)) {
    throw new CustodianError('CST_ERR_VALIDATION', 'anonymousId must be anon-<uuid v4>', { details: { issues: [{ path: 'anonymousId', message: 'must be anon-<uuid v4>' }] } });
  }
  if (anonymousId === subjectId) {
    throw new CustodianError('CST_ERR_VALIDATION', 'subjectId must differ from anonymousId', { details: { issues: [{ path: 'subjectId', message: 'must differ from anonymousId' }] } });
  }
  const [anonymous, own] = await Promise.all([ledger.state(anonymousId), ledger.state(subjectId)]);
  const ownBy = new Map<string, PurposeState>(own.map((s) => [s.purpose, s]));
  const subjectTag = createHash('sha256').update(subjectId).digest('hex').slice(0, 16);
  const skipped: Array<LinkResult['skipped'][number]> = [];
  const inputs: ConsentEventInput[] = [];
  for (const s of anonymous) {
    if (s.status === 'none') continue; // never decided: nothing to say
    if (s.status === 'expired') {
      skipped.push({ purpose: s.purpose, reason: 'expired' });
      continue;
    }
    if (s.eventId === null) {
      skipped.push({ purpose: s.purpose, reason: 'no_decision' });
      continue;
    }
    const mine = ownBy.get(s.purpose);
    // Ids are UUIDv7 in recording order: a later own event is the subject's newer choice.
    if (mine?.eventId != null && mine.eventId > s.eventId) {
      skipped.push({ purpose: s.purpose, reason: 'subject_decided_later' });
      continue;
    }
    const source = await ledger.event(s.eventId, ctx);
    if (source === null) continue;
    const evidence = source.evidence === null || source.evidence.shredded === true ? null : source.evidence;
    inputs.push({
      subjectId,
      purpose: s.purpose,
      decision: s.status,
      jurisdiction: source.jurisdiction,
      noticeVersion: source.noticeVersion,
      method: 'banner',
      clientTime: source.recordedAt,
      expiresAt: source.decision === 'granted' ? source.expiresAt : null,
      evidence:
        evidence === null
          ? { gpc: source.gpc }
          : {
              ...(evidence.userAgent !== undefined ? { userAgent: evidence.userAgent } : {}),
              ...(evidence.pageUrl !== undefined ? { pageUrl: evidence.pageUrl } : {}),
              gpc: source.gpc,
            },
      idempotencyKey: `link:${source.id}:${subjectTag}`,
    });
  }
  if (inputs.length === 0) return { anonymousId, subjectId, events: [], skipped };
  const result = await ledger.record(inputs, { actor: ctx.actor, ...(ctx.requestId !== undefined ? { requestId: ctx.requestId } : {}) });
  return { anonymousId, subjectId, events: result.events, skipped };
}

/** A visitor's choice as the banner submits it. */
export interface BannerChoiceInput {
  readonly anonymousId: string;
  /** Purpose key → granted (true) or refused (false). Every key must be a purpose of `experience`. */
  readonly choices: Readonly<Record<string, boolean>>;
  readonly noticeVersion: string;
  readonly pageUrl?: string | undefined;
  readonly userAgent?: string | undefined;
  /** A Global Privacy Control signal came with the request (`Sec-GPC: 1` or the banner's flag). */
  readonly gpc: boolean;
  /** A random id per submission: a retry of the same submission records once. */
  readonly submissionId?: string | undefined;
}

/**
 * Records a banner choice of an anonymous visitor in the ledger (method `banner`), one event per purpose: a grant,
 * or a refusal, recorded as `withdrawn` where the visitor had granted (or withdrawn) the purpose before. A purpose that is not
 * part of the experience is refused (`CST_ERR_CONSENT_PURPOSE_NOT_OFFERED`).
 */
export async function recordBannerChoice(ledger: ConsentLedger, experience: BannerExperience, input: BannerChoiceInput, ctx: { actor: string; requestId?: string }): Promise<RecordResult> {
  if (!ANONYMOUS_SUBJECT_PATTERN.test(input.anonymousId)) {
    throw new CustodianError('CST_ERR_VALIDATION', 'anonymousId must be anon-<uuid v4>', { details: { issues: [{ path: 'anonymousId', message: 'must be anon-<uuid v4>' }] } });
  }
  const shown = new Set(experience.purposes.map((p) => p.key));
  const entries = Object.entries(input.choices);
  for (const [purpose] of entries) {
    if (!shown.has(purpose)) {
      throw new CustodianError('CST_ERR_CONSENT_PURPOSE_NOT_OFFERED', 'the purpose is not part of the banner in this jurisdiction', {
        details: { purpose, jurisdiction: experience.jurisdiction },
      });
    }
  }
  const current = new Map((await ledger.state(input.anonymousId)).map((s) => [s.purpose, s.status]));
  const evidence = {
    ...(input.userAgent !== undefined ? { userAgent: input.userAgent } : {}),
    ...(input.pageUrl !== undefined ? { pageUrl: input.pageUrl } : {}),
    gpc: input.gpc,
  };
  const events: ConsentEventInput[] = entries.map(([purpose, granted]) => ({
    subjectId: input.anonymousId,
    purpose,
    // A refusal after a grant is a withdrawal; 'withdrawn' stays 'withdrawn', so a retried submission hashes the same.
    decision: granted ? 'granted' : current.get(purpose) === 'granted' || current.get(purpose) === 'withdrawn' ? 'withdrawn' : 'denied',
    jurisdiction: experience.jurisdiction,
    noticeVersion: input.noticeVersion,
    method: 'banner',
    evidence,
    idempotencyKey: input.submissionId === undefined ? null : `banner:${input.submissionId}:${purpose}`,
  }));
  return ledger.record(events, { actor: ctx.actor, gpc: input.gpc, ...(ctx.requestId !== undefined ? { requestId: ctx.requestId } : {}) });
}
