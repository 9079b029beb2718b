import type { ConsentChoice, ConsentModeSignal } from './types.js';

/** Name of the first-party cookie holding the visitor's choice. */
export const COOKIE_NAME = 'custodian_consent';

const SIGNALS: readonly ConsentModeSignal[] = ['ad_storage', 'analytics_storage', 'ad_user_data', 'ad_personalization'];

// Compact JSON: v notice version, i anonymous id, j jurisdiction, p purpose → 1|0, m Consent Mode bits in SIGNALS
// order, t decided at, e expires at (epoch seconds), g GPC applied, q pending submission id.
interface Stored {
  v: string;
  i: string;
  j: string;
  p: Record<string, 0 | 1>;
  m: string;
  t: number;
  e: number;
  g?: 1;
  q?: string;
}

/** The stored choice, or null when there is none or it cannot be read (then the banner asks again). */
export function readChoice(doc: Document): ConsentChoice | null {
  const raw = doc.cookie.split('; ').find((c) => c.startsWith(`${COOKIE_NAME}=`));
  if (raw === undefined) return null;
  try {
    const s = JSON.parse(decodeURIComponent(raw.slice(COOKIE_NAME.length + 1))) as Stored;
    if (typeof s.v !== 'string' || typeof s.i !== 'string' || typeof s.p !== 'object' || s.p === null || typeof s.e !== 'number') return null;
    const purposes: Record<string, boolean> = {};
    for (const k of Object.keys(s.p)) purposes[k] = s.p[k] === 1;
    const consentMode = {} as Record<ConsentModeSignal, boolean>;
    SIGNALS.forEach((sig, n) => (consentMode[sig] = s.m?.[n] === '1'));
    return {
      noticeVersion: s.v,
      anonymousId: s.i,
      jurisdiction: String(s.j),
      purposes,
      consentMode,
      decidedAt: s.t * 1000,
      expiresAt: s.e * 1000,
      gpcApplied: s.g === 1,
      ...(typeof s.q === 'string' ? { pendingSubmission: s.q } : {}),
    };
  } catch {
    return null;
  }
}

/** Stores `choice` until its expiry: first-party, SameSite=Lax, Secure on https. */
export function writeChoice(doc: Document, choice: ConsentChoice, secure: boolean): void {
  const p: Record<string, 0 | 1> = {};
  for (const k of Object.keys(choice.purposes)) p[k] = choice.purposes[k] ? 1 : 0;
  const s: Stored = {
    v: choice.noticeVersion,
    i: choice.anonymousId,
    j: choice.jurisdiction,
    p,
    m: SIGNALS.map((sig) => (choice.consentMode[sig] ? '1' : '0')).join(''),
    t: Math.floor(choice.decidedAt / 1000),
    e: Math.floor(choice.expiresAt / 1000),
  };
  if (choice.gpcApplied) s.g = 1;
  if (choice.pendingSubmission !== undefined) s.q = choice.pendingSubmission;
  const maxAge = Math.max(0, Math.floor((choice.expiresAt - Date.now()) / 1000));
  doc.cookie = `${COOKIE_NAME}=${encodeURIComponent(JSON.stringify(s))}; Path=/; Max-Age=${maxAge}; SameSite=Lax${secure ? '; Secure' : ''}`;
}
