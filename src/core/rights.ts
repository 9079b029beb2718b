/**
 * Data subject rights as data: which requests a person may make under each regime, the article or section
 * granting each, and whether the controller must verify the requester's identity before acting.
 * Deadlines live in `deadlines.ts`. Nothing here does I/O.
 */
import { isEeaCountry } from './adequacy.js';

/**
 * The kinds of request Custodian handles. `opt_out` is the US-style opt-out of sale, sharing, targeted
 * advertising (and, where a state grants it, profiling); `objection` is the GDPR-style right to object.
 */
export const REQUEST_TYPES = ['access', 'portability', 'erasure', 'rectification', 'restriction', 'objection', 'opt_out'] as const;

/** A member of {@link REQUEST_TYPES}. */
export type RequestType = (typeof REQUEST_TYPES)[number];

/** Whether `value` is a {@link RequestType}. */
export function isRequestType(value: string): value is RequestType {
  return (REQUEST_TYPES as readonly string[]).includes(value);
}

/**
 * The rule sets Custodian models. A regime names a set of rules, not one statute: `VCDPA` is the
 * Virginia model, shared by the states in {@link VIRGINIA_MODEL_STATES}.
 */
export const REGIMES = ['GDPR', 'UK_GDPR', 'CCPA', 'VCDPA', 'LGPD', 'PIPEDA'] as const;

/** A member of {@link REGIMES}. */
export type Regime = (typeof REGIMES)[number];

/** Whether `value` is a {@link Regime}. */
export function isRegime(value: string): value is Regime {
  return (REGIMES as readonly string[]).includes(value);
}

/** A right the regime grants. */
export interface Right {
  readonly type: RequestType;
  readonly available: true;
  /** The provision granting the right. */
  readonly citation: string;
  /** Whether the controller must verify the requester's identity before acting. */
  readonly verification: boolean;
  /** The provision that says so. */
  readonly verificationCitation: string;
  readonly note?: string;
}

/** A request type the regime does not grant, with why and what comes closest. */
export interface NoRight {
  readonly type: RequestType;
  readonly available: false;
  readonly reason: string;
  /** The nearest provision, when there is one. */
  readonly citation?: string;
}

/** One regime's answer for a request type. */
export type Entitlement = Right | NoRight;

/** The rights of one regime: every request type has exactly one entry. */
export interface RegimeRights {
  readonly regime: Regime;
  readonly name: string;
  readonly entitlements: Readonly<Record<RequestType, Entitlement>>;
}

function yes(type: RequestType, citation: string, verificationCitation: string, note?: string): Right {
  return Object.freeze({ type, available: true, citation, verification: true, verificationCitation, ...(note === undefined ? {} : { note }) });
}

function noVerification(type: RequestType, citation: string, verificationCitation: string, note?: string): Right {
  return Object.freeze({ type, available: true, citation, verification: false, verificationCitation, ...(note === undefined ? {} : { note }) });
}

function no(type: RequestType, reason: string, citation?: string): NoRight {
  return Object.freeze({ type, available: false, reason, ...(citation === undefined ? {} : { citation }) });
}

function gdprLike(regime: 'GDPR' | 'UK_GDPR', name: string, prefix: string): RegimeRights {
  // Art. 12(6): where the controller has reasonable doubts about the identity of the requester it may ask for
  // more information; Art. 11(2) lets it refuse when it cannot identify the data subject at all.
  const verify = `${prefix} Art. 12(6); Art. 11(2)`;
  return {
    regime,
    name,
    entitlements: {
      access: yes('access', `${prefix} Art. 15`, verify),
      portability: yes('portability', `${prefix} Art. 20`, verify, 'Only for data the person provided, processed by automated means on consent or contract (Art. 20(1)).'),
      erasure: yes('erasure', `${prefix} Art. 17`, verify, 'Subject to the exceptions of Art. 17(3).'),
      rectification: yes('rectification', `${prefix} Art. 16`, verify),
      restriction: yes('restriction', `${prefix} Art. 18`, verify),
      objection: yes('objection', `${prefix} Art. 21`, verify, 'Absolute for direct marketing (Art. 21(2)–(3)); otherwise only against processing on Art. 6(1)(e) or (f).'),
      opt_out: no(
        'opt_out',
        'There is no opt-out of sale or sharing as such: object to direct marketing (objection, Art. 21(2)) or withdraw consent (Art. 7(3)).',
        `${prefix} Art. 21(2); Art. 7(3)`,
      ),
    },
  };
}

const VA = 'Va. Code Ann. §59.1-577';
const CIV = 'Cal. Civ. Code';

/** The rights of each regime, each citing the provision that grants it. */
export const RIGHTS: Readonly<Record<Regime, RegimeRights>> = Object.freeze({
  GDPR: gdprLike('GDPR', 'General Data Protection Regulation (EU) 2016/679', 'GDPR'),
  UK_GDPR: gdprLike('UK_GDPR', 'UK GDPR with the Data Protection Act 2018', 'UK GDPR'),
  CCPA: {
    regime: 'CCPA',
    name: 'California Consumer Privacy Act as amended by the CPRA',
    entitlements: {
      // A "verifiable consumer request" is required before disclosing, correcting or deleting: §1798.130(a)(2);
      // the verification rules are 11 CCR §7060 ff.
      access: yes('access', `${CIV} §1798.110; §1798.115`, `${CIV} §1798.130(a)(2); 11 CCR §7060`),
      portability: yes(
        'portability',
        `${CIV} §1798.130(a)(3)(B)(iii)`,
        `${CIV} §1798.130(a)(2); 11 CCR §7060`,
        'Part of the right to know (§1798.110): information delivered in a portable, readily usable format.',
      ),
      erasure: yes('erasure', `${CIV} §1798.105`, `${CIV} §1798.130(a)(2); 11 CCR §7060`, 'Subject to the exceptions of §1798.105(d).'),
      rectification: yes('rectification', `${CIV} §1798.106`, `${CIV} §1798.130(a)(2); 11 CCR §7060`),
      restriction: no(
        'restriction',
        'No general right to restrict processing; the right to limit the use of sensitive personal information (§1798.121) is handled as opt_out.',
        `${CIV} §1798.121`,
      ),
      objection: no('objection', 'No general right to object; the opt-out of sale or sharing (§1798.120) is opt_out.', `${CIV} §1798.120`),
      opt_out: noVerification(
        'opt_out',
        `${CIV} §1798.120 (sale/sharing); §1798.121 (limit use of sensitive personal information)`,
        `${CIV} §1798.135; 11 CCR §7026(d)–(e)`,
        'Need not be a verifiable consumer request; may be refused only on a documented, good-faith belief of fraud. A Global Privacy Control signal is a valid opt-out request (§1798.135(e); 11 CCR §7025).',
      ),
    },
  },
  VCDPA: {
    regime: 'VCDPA',
    name: 'Virginia Consumer Data Protection Act and the state laws modelled on it',
    entitlements: {
      access: yes('access', `${VA}(A)(1)`, `${VA}(B)`, 'Confirm whether personal data is processed and access it.'),
      rectification: yes('rectification', `${VA}(A)(2)`, `${VA}(B)`),
      erasure: yes('erasure', `${VA}(A)(3)`, `${VA}(B)`),
      portability: yes('portability', `${VA}(A)(4)`, `${VA}(B)`, 'A copy of the data the consumer provided, in a portable and readily usable format.'),
      restriction: no('restriction', 'No right to restrict processing; the opt-out of targeted advertising, sale and profiling is opt_out.', `${VA}(A)(5)`),
      objection: no('objection', 'No general right to object; the opt-out of targeted advertising, sale and profiling is opt_out.', `${VA}(A)(5)`),
      // Virginia lets a controller decline a request it cannot authenticate but does not oblige it to authenticate;
      // several states of the model say outright that opt-outs need not be authenticated. Acting on an opt-out
      // without verification is lawful in every state of the model, so Custodian does.
      opt_out: noVerification(
        'opt_out',
        `${VA}(A)(5)`,
        `${VA}(B)`,
        'Opt out of targeted advertising, sale, and profiling in furtherance of decisions with legal or similarly significant effects.',
      ),
    },
  },
  LGPD: {
    regime: 'LGPD',
    name: 'Lei Geral de Proteção de Dados (Lei 13.709/2018)',
    entitlements: {
      // Art. 18 §3: rights are exercised on the express request of the data subject or a legally constituted
      // representative, which presupposes that the controller confirms who is asking.
      access: yes('access', 'LGPD Art. 18, I–II', 'LGPD Art. 18 §3', 'Confirmation of processing (I) and access (II); sharing recipients (VII).'),
      portability: yes('portability', 'LGPD Art. 18, V', 'LGPD Art. 18 §3'),
      erasure: yes('erasure', 'LGPD Art. 18, IV and VI', 'LGPD Art. 18 §3', 'IV: unnecessary, excessive or unlawfully processed data; VI: data processed on consent (exceptions in Art. 16).'),
      rectification: yes('rectification', 'LGPD Art. 18, III', 'LGPD Art. 18 §3'),
      restriction: yes('restriction', 'LGPD Art. 18, IV', 'LGPD Art. 18 §3', 'Blocking (bloqueio) of unnecessary, excessive or unlawfully processed data.'),
      objection: yes('objection', 'LGPD Art. 18 §2', 'LGPD Art. 18 §3', 'Against processing without consent that does not comply with the law.'),
      opt_out: no('opt_out', 'No opt-out of sale as such: revoke consent (Art. 18, IX; Art. 8 §5) or object (Art. 18 §2).', 'LGPD Art. 18, IX; Art. 8 §5'),
    },
  },
  PIPEDA: {
    regime: 'PIPEDA',
    name: 'Personal Information Protection and Electronic Documents Act (Canada)',
    entitlements: {
      access: yes('access', 'PIPEDA Sch. 1, Principle 4.9; s. 8', 'PIPEDA Sch. 1, Principles 4.7 and 4.9'),
      rectification: yes('rectification', 'PIPEDA Sch. 1, Principle 4.9.5', 'PIPEDA Sch. 1, Principles 4.7 and 4.9', 'Amendment may mean correction, deletion or addition.'),
      opt_out: noVerification(
        'opt_out',
        'PIPEDA Sch. 1, Principle 4.3.8',
        'PIPEDA Sch. 1, Principle 4.3.8',
        'Withdrawal of consent, subject to legal or contractual restrictions and reasonable notice.',
      ),
      portability: no('portability', 'PIPEDA grants no right to data portability.'),
      erasure: no(
        'erasure',
        'No general right to erasure: information no longer needed must be destroyed, erased or made anonymous (Principle 4.5.3); inaccurate information may be deleted on amendment (Principle 4.9.5).',
        'PIPEDA Sch. 1, Principles 4.5.3 and 4.9.5',
      ),
      restriction: no('restriction', 'PIPEDA grants no right to restrict processing.'),
      objection: no('objection', 'No general right to object; withdrawal of consent (Principle 4.3.8) is opt_out.', 'PIPEDA Sch. 1, Principle 4.3.8'),
    },
  },
} satisfies Record<Regime, RegimeRights>);

/** A US state whose law follows the Virginia model (regime `VCDPA`), with where it departs from it. */
export interface VirginiaModelState {
  readonly code: string;
  readonly state: string;
  readonly law: string;
  /** The section granting consumer rights, where verified. */
  readonly citation?: string;
  /** Request types the state does not grant although Virginia does. */
  readonly excludes: readonly RequestType[];
  readonly note?: string;
}

/**
 * US states modelled as `VCDPA`: rights to access, correct, delete, port and opt out; 45 days to respond,
 * extendable once by 45. Citations are given only where verified; the rest are listed by statute name.
 * States whose rules depart further (Iowa: 90 days and no correction) are not listed.
 */
export const VIRGINIA_MODEL_STATES: readonly VirginiaModelState[] = Object.freeze(
  (
    [
      { code: 'US-VA', state: 'Virginia', law: 'Consumer Data Protection Act', citation: VA, excludes: [] },
      { code: 'US-CO', state: 'Colorado', law: 'Colorado Privacy Act', citation: 'Colo. Rev. Stat. §6-1-1306', excludes: [] },
      { code: 'US-CT', state: 'Connecticut', law: 'Connecticut Data Privacy Act', citation: 'Conn. Gen. Stat. §42-518', excludes: [] },
      {
        code: 'US-UT',
        state: 'Utah',
        law: 'Utah Consumer Privacy Act',
        citation: 'Utah Code §13-61-201',
        excludes: ['rectification'],
        note: 'Narrower: no right to correct; deletion only of data the consumer provided; no opt-out of profiling.',
      },
      { code: 'US-TX', state: 'Texas', law: 'Texas Data Privacy and Security Act', citation: 'Tex. Bus. & Com. Code §541.051', excludes: [] },
      { code: 'US-OR', state: 'Oregon', law: 'Oregon Consumer Privacy Act', citation: 'ORS 646A.574', excludes: [], note: 'Also a right to a list of the specific third parties that received the data.' },
      { code: 'US-MT', state: 'Montana', law: 'Montana Consumer Data Privacy Act', excludes: [] },
      { code: 'US-DE', state: 'Delaware', law: 'Delaware Personal Data Privacy Act', excludes: [] },
      { code: 'US-NH', state: 'New Hampshire', law: 'New Hampshire Privacy Act (RSA 507-H)', excludes: [] },
      { code: 'US-NJ', state: 'New Jersey', law: 'New Jersey Data Privacy Act', excludes: [] },
      { code: 'US-MN', state: 'Minnesota', law: 'Minnesota Consumer Data Privacy Act', excludes: [] },
      { code: 'US-MD', state: 'Maryland', law: 'Maryland Online Data Privacy Act', excludes: [] },
    ] satisfies VirginiaModelState[]
  ).map((s) => Object.freeze(s)),
);

const virginiaModelByCode = new Map(VIRGINIA_MODEL_STATES.map((s) => [s.code, s]));

// Canadian provinces with a private-sector law declared substantially similar to PIPEDA, which then governs
// processing within the province instead: Quebec, Alberta, British Columbia. Not modelled.
const CANADIAN_PROVINCES_WITH_OWN_LAW = new Set(['CA-QC', 'CA-AB', 'CA-BC']);

/**
 * The regime that governs requests from a person in `jurisdiction` (a code as in `JURISDICTION_CODE_PATTERN`:
 * `EU`, an EEA country such as `DE`, `UK`/`GB`, `US-CA`, `US-VA`, `BR`, `CA`), or undefined when none is modelled.
 *
 * @example regimeOf('FR') // 'GDPR'
 * @example regimeOf('US-CO') // 'VCDPA'
 */
export function regimeOf(jurisdiction: string): Regime | undefined {
  const code = jurisdiction.trim().toUpperCase();
  const [country = '', subdivision] = code.split('-', 2);
  if (code === 'EU' || isEeaCountry(country)) return 'GDPR';
  if (country === 'UK' || country === 'GB') return 'UK_GDPR';
  if (country === 'BR') return 'LGPD';
  if (country === 'CA') return CANADIAN_PROVINCES_WITH_OWN_LAW.has(code) ? undefined : 'PIPEDA';
  if (country === 'US' && subdivision !== undefined) {
    if (code === 'US-CA') return 'CCPA';
    if (virginiaModelByCode.has(code)) return 'VCDPA';
  }
  return undefined;
}

/** The state entry of a Virginia-model jurisdiction, if `jurisdiction` is one. */
export function virginiaModelState(jurisdiction: string): VirginiaModelState | undefined {
  return virginiaModelByCode.get(jurisdiction.trim().toUpperCase());
}

/** The rights `regime` grants, in {@link REQUEST_TYPES} order. */
export function rightsOf(regime: Regime): readonly Right[] {
  const { entitlements } = RIGHTS[regime];
  return REQUEST_TYPES.map((t) => entitlements[t]).filter((e): e is Right => e.available);
}

/** The answer of {@link mayRequest}. */
export interface MayRequestResult {
  readonly allowed: boolean;
  /** The provision granting the right, or the nearest one when it is refused. */
  readonly citation?: string;
  /** Why the request is not available. */
  readonly reason?: string;
}

/**
 * Whether a person in `jurisdiction` may make a request of `type`, citing the provision.
 *
 * @example mayRequest('US-CA', 'opt_out') // { allowed: true, citation: 'Cal. Civ. Code §1798.120 …' }
 * @example mayRequest('US-UT', 'rectification') // { allowed: false, reason: 'Utah … does not grant …' }
 */
export function mayRequest(jurisdiction: string, type: RequestType): MayRequestResult {
  if (!isRequestType(type)) return { allowed: false, reason: `Unknown request type '${String(type)}'.` };
  const regime = regimeOf(jurisdiction);
  if (regime === undefined) return { allowed: false, reason: `No data subject rights regime is modelled for jurisdiction '${jurisdiction}'.` };
  const state = regime === 'VCDPA' ? virginiaModelState(jurisdiction) : undefined;
  if (state?.excludes.includes(type)) {
    return { allowed: false, reason: `${state.state} (${state.law}) does not grant this right.${state.note === undefined ? '' : ` ${state.note}`}`, ...(state.citation === undefined ? {} : { citation: state.citation }) };
  }
  const e = RIGHTS[regime].entitlements[type];
  if (!e.available) return { allowed: false, reason: e.reason, ...(e.citation === undefined ? {} : { citation: e.citation }) };
  // Another state's request cites that state's law (its section where verified), never Virginia's.
  const citation = state !== undefined && state.code !== 'US-VA' ? (state.citation ?? state.law) : e.citation;
  return { allowed: true, citation };
}

/**
 * Whether `regime` requires the requester's identity to be verified before a request of `type` is acted on.
 * A type the regime does not grant answers true (fail safe): check {@link mayRequest} first.
 */
export function needsVerification(regime: Regime, type: RequestType): boolean {
  const e = RIGHTS[regime].entitlements[type];
  return e.available ? e.verification : true;
}
