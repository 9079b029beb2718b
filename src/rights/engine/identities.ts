import { CustodianError, isStorableText } from '../../core/index.js';

/** Identities of a request by kind (`email`, `phone_number`, `user_id`, custom kinds of the data map): 1–10 values each. */
export type Identities = Readonly<Record<string, readonly string[]>>;

/** API spellings of the built-in kinds. */
const ALIASES: Readonly<Record<string, string>> = { email: 'email', phone: 'phone_number', phoneNumber: 'phone_number', phone_number: 'phone_number', userId: 'user_id', user_id: 'user_id' };
const KIND = /^[a-z][a-z0-9_]{0,63}$/;
// A deliberately plain check: one @, a dot in the domain, no spaces or control characters, ≤ 254 characters.
const EMAIL = /^[^\s@"<>()[\]\\,;:]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$/;
const PHONE = /^\+?[0-9][0-9 ().-]{5,30}$/;

/**
 * Validates and normalises the identities of a request: known kinds only (`allowed`: those the data map
 * declares), e-mail addresses trimmed and lower-cased, phone numbers reduced to `+digits`. Messages name the
 * kind and position, never the value.
 */
export function normaliseIdentities(input: Readonly<Record<string, unknown>>, allowed: readonly string[]): Identities {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) throw bad('identities', 'must be an object of identity kinds');
  const out: Record<string, string[]> = {};
  for (const [given, raw] of Object.entries(input)) {
    const kind = ALIASES[given] ?? given;
    if (!KIND.test(kind) || !allowed.includes(kind)) throw bad(`identities.${given.slice(0, 64)}`, `unknown identity type; known: ${allowed.join(', ')}`);
    const values = Array.isArray(raw) ? raw : [raw];
    if (values.length === 0 || values.length > 10) throw bad(`identities.${given}`, 'give 1 to 10 values');
    out[kind] = [
      ...new Set(
        values.map((v, i) => {
          if (typeof v !== 'string' || v.trim().length === 0 || v.length > 320 || !isStorableText(v)) throw bad(`identities.${given}.${i}`, 'must be text of 1 to 320 characters');
          const value = v.trim();
          if (kind === 'email') {
            if (!EMAIL.test(value) || value.length > 254) throw bad(`identities.${given}.${i}`, 'is not an e-mail address');
            return value.toLowerCase();
          }
          if (kind === 'phone_number') {
            if (!PHONE.test(value)) throw bad(`identities.${given}.${i}`, 'is not a phone number');
            return (value.startsWith('+') ? '+' : '') + value.replace(/\D/g, '');
          }
          return value;
        }),
      ),
    ];
  }
  if (Object.keys(out).length === 0) throw bad('identities', 'give at least one identity');
  return out;
}

function bad(path: string, message: string): CustodianError {
  return new CustodianError('CST_ERR_REQUEST_BAD_IDENTITY', `${path} ${message}`, { details: { issues: [{ path, message }] } });
}
