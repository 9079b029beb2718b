import { CustodianError } from '../core/index.js';

/**
 * How a value is normalised before it is blind-indexed, so equal values in different spellings match:
 * - `exact`: as given;
 * - `trim`: surrounding white space removed;
 * - `lower`: trimmed, Unicode NFKC, lower-cased;
 * - `email`: like `lower` (RFC 5321 local parts are case-sensitive in theory, never in practice);
 * - `phone`: digits only, keeping a leading `+` (`+44 20 7946 0000` = `+442079460000`).
 */
export const NORMALISERS = {
  exact: (v: string) => v,
  trim: (v: string) => v.trim(),
  lower: (v: string) => v.trim().normalize('NFKC').toLowerCase(),
  email: (v: string) => v.trim().normalize('NFKC').toLowerCase(),
  phone: (v: string) => {
    const t = v.trim();
    return (t.startsWith('+') ? '+' : '') + t.replace(/\D/g, '');
  },
} as const satisfies Record<string, (v: string) => string>;
export type Normaliser = keyof typeof NORMALISERS;
export const NORMALISER_NAMES = Object.keys(NORMALISERS) as [Normaliser, ...Normaliser[]];

/** Definition of a blind index. */
export interface BlindIndexDefinition {
  readonly name: string;
  readonly normaliser: Normaliser;
  /**
   * Output size in bits (32..256, a multiple of 8). With n distinct values, the chance that two collide is
   * about n² / 2^(bits+1): 64 bits keep it near 1 in 370,000 for 10⁷ values; fewer bits give k-anonymity
   * (several values share a digest) at the price of false matches the application must filter.
   */
  readonly bits: number;
}

/** Indexes defined on first use. */
export const BUILTIN_BLIND_INDEXES: readonly BlindIndexDefinition[] = [
  { name: 'email', normaliser: 'email', bits: 64 },
  { name: 'phone', normaliser: 'phone', bits: 64 },
];

export const BLIND_INDEX_NAME = /^[a-z][a-z0-9_.-]{0,63}$/;

/** Validates a definition; throws CST_ERR_VALIDATION. */
export function checkBlindIndexDefinition(d: BlindIndexDefinition): BlindIndexDefinition {
  if (!BLIND_INDEX_NAME.test(d.name)) {
    throw new CustodianError('CST_ERR_VALIDATION', 'blind index names are lower-case words of at most 64 characters', { details: { issues: [{ path: 'name', message: 'invalid' }] } });
  }
  if (!(d.normaliser in NORMALISERS)) {
    throw new CustodianError('CST_ERR_VALIDATION', `normaliser must be one of ${NORMALISER_NAMES.join(', ')}`, { details: { issues: [{ path: 'normaliser', message: 'invalid' }] } });
  }
  if (!Number.isInteger(d.bits) || d.bits < 32 || d.bits > 256 || d.bits % 8 !== 0) {
    throw new CustodianError('CST_ERR_VALIDATION', 'bits must be a multiple of 8 from 32 to 256', { details: { issues: [{ path: 'bits', message: 'invalid' }] } });
  }
  return Object.freeze({ ...d });
}
