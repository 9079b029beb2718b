import { isIP } from 'node:net';

/**
 * Exact value validators of the scanner: each answers "is this string a well-formed X", checking the
 * check digit or checksum wherever the scheme has one. Pure functions, no I/O; every one is O(length).
 * They never log or keep the value.
 */

const digitsOnly = (s: string): string => s.replace(/[\s-]/g, '');

/**
 * Luhn (ISO/IEC 7812-1 annex B) check on a string of digits: doubling every second digit from the right,
 * the sum is ≡ 0 (mod 10). Detects every single-digit error and most adjacent transpositions.
 */
export function luhnValid(digits: string): boolean {
  if (!/^\d+$/.test(digits) || digits.length < 2) return false;
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

/** The Luhn check digit to append to `payload` (digits) so that {@link luhnValid} holds. */
export function luhnCheckDigit(payload: string): number {
  for (let d = 0; d <= 9; d++) if (luhnValid(payload + String(d))) return d;
  /* c8 ignore next */
  throw new Error('unreachable');
}

/**
 * A payment card number (PAN): 13–19 digits (spaces or dashes allowed between groups), an issuer prefix
 * of a real scheme (Visa 4, Mastercard 51–55 and 2221–2720, Amex 34/37, Discover 6011/644–649/65, JCB
 * 3528–3589, Diners 300–305/36/38/39, UnionPay 62, Maestro 50/56–58/63/67) and a valid Luhn digit.
 */
export function isCreditCardNumber(value: string): boolean {
  if (!/^\d[\d -]{11,22}\d$/.test(value)) return false;
  const pan = digitsOnly(value);
  if (pan.length < 13 || pan.length > 19) return false;
  if (!hasCardIssuerPrefix(pan)) return false;
  return luhnValid(pan);
}

function hasCardIssuerPrefix(pan: string): boolean {
  const p2 = Number(pan.slice(0, 2));
  const p3 = Number(pan.slice(0, 3));
  const p4 = Number(pan.slice(0, 4));
  if (pan[0] === '4') return [13, 16, 19].includes(pan.length);
  if ((p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720)) return pan.length === 16;
  if (p2 === 34 || p2 === 37) return pan.length === 15;
  if (p4 === 6011 || p2 === 65 || (p3 >= 644 && p3 <= 649)) return pan.length >= 16;
  if (p4 >= 3528 && p4 <= 3589) return pan.length >= 16;
  if ((p3 >= 300 && p3 <= 305) || p2 === 36 || p2 === 38 || p2 === 39) return pan.length >= 14;
  if (p2 === 62) return pan.length >= 16;
  if (p2 === 50 || (p2 >= 56 && p2 <= 58) || p2 === 63 || p2 === 67) return pan.length >= 12;
  return false;
}

/** IBAN lengths per country (ISO 13616 registry, SWIFT release 2024). */
export const IBAN_LENGTHS: Readonly<Record<string, number>> = Object.freeze({
  AD: 24, AE: 23, AL: 28, AT: 20, AZ: 28, BA: 20, BE: 16, BG: 22, BH: 22, BR: 29, BY: 28, CH: 21, CR: 22, CY: 28,
  CZ: 24, DE: 22, DK: 18, DO: 28, EE: 20, EG: 29, ES: 24, FI: 18, FO: 18, FR: 27, GB: 22, GE: 22, GI: 23, GL: 18,
  GR: 27, GT: 28, HR: 21, HU: 28, IE: 22, IL: 23, IQ: 23, IS: 26, IT: 27, JO: 30, KW: 30, KZ: 20, LB: 28, LC: 32,
  LI: 21, LT: 20, LU: 20, LV: 21, MC: 27, MD: 24, ME: 22, MK: 19, MR: 27, MT: 31, MU: 30, NL: 18, NO: 15, PK: 24,
  PL: 28, PS: 29, PT: 25, QA: 29, RO: 24, RS: 22, SA: 24, SC: 31, SE: 24, SI: 19, SK: 24, SM: 27, ST: 25, SV: 28,
  TL: 23, TN: 24, TR: 26, UA: 29, VA: 22, VG: 24, XK: 20,
});

/** `n` (a string of digits and upper-case letters, letters as 10–35) modulo 97, computed piecewise. */
export function mod97(s: string): number {
  let rest = 0;
  for (const ch of s) {
    const code = ch.charCodeAt(0);
    const v = code >= 65 ? String(code - 55) : ch;
    for (const d of v) rest = (rest * 10 + (d.charCodeAt(0) - 48)) % 97;
  }
  return rest;
}

/**
 * An IBAN (ISO 13616): country code with its registered length, two check digits, alphanumeric BBAN, and
 * the ISO 7064 MOD 97-10 check — the rearranged number (BBAN + country + check digits) mod 97 is 1.
 * Spaces are allowed in groups of four, as printed.
 */
export function isIban(value: string): boolean {
  const iban = value.replace(/ /g, '').toUpperCase();
  if (!/^[A-Z]{2}\d{2}[A-Z0-9]{11,30}$/.test(iban)) return false;
  if (IBAN_LENGTHS[iban.slice(0, 2)] !== iban.length) return false;
  return mod97(iban.slice(4) + iban.slice(0, 4)) === 1;
}

/**
 * A US Social Security number in its written form `AAA-GG-SSSS` (SSA rules: area not 000, 666 or 900–999,
 * group not 00, serial not 0000). `allowBare` also accepts nine bare digits, which only the column
 * name can tell from any other number: the scanner passes it when the column is named like an SSN.
 */
export function isUsSsn(value: string, allowBare = false): boolean {
  const m = /^(\d{3})-(\d{2})-(\d{4})$/.exec(value) ?? (allowBare ? /^(\d{3})(\d{2})(\d{4})$/.exec(value) : null);
  if (m === null) return false;
  const [area, group, serial] = [m[1]!, m[2]!, m[3]!];
  return area !== '000' && area !== '666' && area[0] !== '9' && group !== '00' && serial !== '0000';
}

/**
 * A UK National Insurance number (HMRC NIM39110): two prefix letters (first not D F I Q U V, second not
 * D F I O Q U V, not BG GB KN NK NT TN ZZ), six digits, a suffix A–D. No check digit exists.
 */
export function isUkNino(value: string): boolean {
  const v = value.replace(/ /g, '').toUpperCase();
  const m = /^([A-CEGHJ-PR-TW-Z])([A-CEGHJ-NPR-TW-Z])\d{6}[A-D]$/.exec(v);
  if (m === null) return false;
  return !['BG', 'GB', 'KN', 'NK', 'NT', 'TN', 'ZZ'].includes(m[1]! + m[2]!);
}

/**
 * A Dutch burgerservicenummer: nine digits (eight with an implied leading zero) passing the 11-proof —
 * Σ (9…2) × d₁…d₈ − d₉ ≡ 0 (mod 11), and not all zeros.
 */
export function isDutchBsn(value: string): boolean {
  const v = value.replace(/[.\s]/g, '');
  if (!/^\d{8,9}$/.test(v)) return false;
  const d = v.padStart(9, '0');
  if (/^0+$/.test(d)) return false;
  let sum = 0;
  for (let i = 0; i < 8; i++) sum += (9 - i) * (d.charCodeAt(i) - 48);
  sum -= d.charCodeAt(8) - 48;
  return sum % 11 === 0;
}

/**
 * A Brazilian CPF: eleven digits (optionally `ddd.ddd.ddd-dd`), two mod-11 check digits (weights 10…2 then
 * 11…2, a remainder below 2 giving 0), not all digits equal (those pass the checks but are invalid).
 */
export function isBrazilianCpf(value: string): boolean {
  if (!/^(\d{11}|\d{3}\.\d{3}\.\d{3}-\d{2})$/.test(value)) return false;
  const d = value.replace(/\D/g, '');
  if (/^(\d)\1{10}$/.test(d)) return false;
  const check = (len: number): number => {
    let sum = 0;
    for (let i = 0; i < len; i++) sum += (len + 1 - i) * (d.charCodeAt(i) - 48);
    const r = sum % 11;
    return r < 2 ? 0 : 11 - r;
  };
  return check(9) === d.charCodeAt(9) - 48 && check(10) === d.charCodeAt(10) - 48;
}

/**
 * A Canadian Social Insurance Number: nine digits (optionally `ddd-ddd-ddd` or spaced) passing Luhn, the
 * first digit not 0 or 8 (never issued).
 */
export function isCanadianSin(value: string): boolean {
  if (!/^(\d{9}|\d{3}[- ]\d{3}[- ]\d{3})$/.test(value)) return false;
  const d = value.replace(/\D/g, '');
  if (d[0] === '0' || d[0] === '8') return false;
  return luhnValid(d);
}

/**
 * A French NIR (numéro de sécurité sociale) with its key: 13 characters — sex 1/2 (3, 4, 7, 8 for
 * provisional numbers), year, month (01–12, or 20–42/50–99 for unknown), department (digits, or 2A/2B for
 * Corsica), commune, order — and a two-digit key = 97 − (number mod 97), with 2A → 19 and 2B → 18 in the
 * computation. Spaces are allowed.
 */
export function isFrenchNir(value: string): boolean {
  const v = value.replace(/ /g, '').toUpperCase();
  const m = /^([123478])(\d{2})(\d{2})(\d{2}|2A|2B)(\d{3})(\d{3})(\d{2})$/.exec(v);
  if (m === null) return false;
  const month = Number(m[3]);
  if (!((month >= 1 && month <= 12) || (month >= 20 && month <= 42) || month >= 50)) return false;
  const dept = m[4] === '2A' ? '19' : m[4] === '2B' ? '18' : m[4]!;
  const body = BigInt(`${m[1]}${m[2]}${m[3]}${dept}${m[5]}${m[6]}`);
  const key = 97n - (body % 97n);
  return key === BigInt(m[7]!);
}

const DNI_LETTERS = 'TRWAGMYFPDXBNJZSQVHLCKE';

/**
 * A Spanish DNI (8 digits + control letter = `TRWAGMYFPDXBNJZSQVHLCKE`[n mod 23]) or NIE (X/Y/Z + 7 digits +
 * letter, X/Y/Z standing for 0/1/2). A dash or space before the letter is allowed.
 */
export function isSpanishDni(value: string): boolean {
  const v = value.replace(/[\s-]/g, '').toUpperCase();
  const m = /^([XYZ]\d{7}|\d{8})([A-Z])$/.exec(v);
  if (m === null) return false;
  const num = Number(m[1]!.replace(/^X/, '0').replace(/^Y/, '1').replace(/^Z/, '2'));
  return DNI_LETTERS[num % 23] === m[2];
}

/**
 * An e-mail address as people write it (RFC 5321 limits, dot-atom local part, a domain of LDH labels with
 * an alphabetic TLD). Quoted local parts and IP-literal domains are left out: they are not what
 * personal-data columns hold, and accepting them invites false positives.
 */
export function isEmail(value: string): boolean {
  if (value.length > 254 || value.length < 6) return false;
  const at = value.lastIndexOf('@');
  if (at < 1 || at > 64) return false;
  const local = value.slice(0, at);
  const domain = value.slice(at + 1);
  if (!/^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/.test(local)) return false;
  return /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$/.test(domain);
}

/** An IPv4 (dotted quad, no leading zeros) or IPv6 address, without prefix length. */
export function isIpAddress(value: string): boolean {
  return isIP(value) !== 0;
}

/**
 * A telephone number. `formattedOnly` (used when the column name says nothing) accepts only numbers written
 * as phone numbers: E.164 with `+` (8–15 digits, first digit not 0), or grouped with spaces, dashes, dots or
 * parentheses; bare digit strings are then rejected, since order numbers and ids look the same. Otherwise
 * national forms of 7–15 digits also pass.
 */
export function isPhoneNumber(value: string, formattedOnly = false): boolean {
  const v = value.trim();
  if (!/^\+?[\d\s().-]{7,24}$/.test(v)) return false;
  if (/[\s().-]{2,}/.test(v.replace(/\) /g, ')'))) return false;
  const digits = v.replace(/\D/g, '');
  if (v.startsWith('+')) return /^[1-9]\d{7,14}$/.test(digits);
  if (formattedOnly && !/[\s().-]/.test(v)) return false;
  if (digits.length < 7 || digits.length > 15) return false;
  if ((v.match(/\(/g)?.length ?? 0) !== (v.match(/\)/g)?.length ?? 0)) return false;
  // A grouped number has groups of 2–5 digits (the last up to 8), as numbering plans print them.
  if (/[\s().-]/.test(v)) return v.split(/[\s().-]+/).filter(Boolean).every((g) => g.length >= 1 && g.length <= 8);
  return true;
}

/**
 * A calendar date (`YYYY-MM-DD`, optionally followed by a midnight time as engines print DATE/DATETIME
 * columns) that could be a living or recently deceased person's date of birth: 1900-01-01 up to `today`.
 */
export function isPlausibleBirthDate(value: string, today: Date = new Date()): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:[ T]00:00(?::00(?:\.0+)?)?(?:Z|[+-]00(?::?00)?)?)?$/.exec(value.trim());
  if (m === null) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const date = new Date(Date.UTC(y, mo - 1, d));
  if (date.getUTCFullYear() !== y || date.getUTCMonth() !== mo - 1 || date.getUTCDate() !== d) return false;
  return y >= 1900 && date.getTime() <= today.getTime();
}

/**
 * A personal name as written in a name column: 1–5 words of letters (any script), each optionally joined
 * by an apostrophe, hyphen or period, at most 80 characters, at least one word capitalised — not a code,
 * a product reference or a sentence.
 */
export function isPersonName(value: string): boolean {
  const v = value.trim();
  if (v.length < 2 || v.length > 80) return false;
  const words = v.split(/\s+/);
  if (words.length > 5) return false;
  if (!words.every((w) => /^\p{L}[\p{L}\p{M}'’.-]*$/u.test(w))) return false;
  return words.some((w) => /^\p{Lu}/u.test(w));
}

/**
 * A street line: a house number and a street name in either order ("12 Baker Street", "Hauptstraße 5a",
 * "Flat 3, 10 Downing St"), letters and digits both present, 5–120 characters.
 */
export function isStreetAddress(value: string): boolean {
  const v = value.trim();
  if (v.length < 5 || v.length > 120) return false;
  if (!/\p{L}{2,}/u.test(v) || !/\d/.test(v)) return false;
  return /^\d+[A-Za-z]?[,\s]+\p{L}/u.test(v) || /\p{L}[\p{L}.'-]*\s+\d+[A-Za-z]?(?:[\s,/-].*)?$/u.test(v) || /^\p{L}+\s+\d+[A-Za-z]?,\s*\d+/u.test(v);
}

/**
 * A postal code of a common format: US ZIP (12345, 12345-6789), UK postcode, Canadian (A1A 1A1), Dutch
 * (1234 AB), or 4–5 digit codes (DE, FR, ES, IT, BE, AT, CH, DK…).
 */
export function isPostalCode(value: string): boolean {
  const v = value.trim().toUpperCase();
  return (
    /^\d{5}(?:-\d{4})?$/.test(v) ||
    /^\d{4}$/.test(v) ||
    /^[1-9]\d{3} ?[A-Z]{2}$/.test(v) ||
    /^[A-Z]\d[A-Z] ?\d[A-Z]\d$/.test(v) ||
    /^[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}$/.test(v)
  );
}

/** Any of the national identifier validators, by name; the scanner reports which one matched. */
export const NATIONAL_ID_VALIDATORS = Object.freeze({
  us_ssn: (v: string) => isUsSsn(v),
  uk_nino: isUkNino,
  nl_bsn: isDutchBsn,
  br_cpf: isBrazilianCpf,
  ca_sin: isCanadianSin,
  fr_nir: isFrenchNir,
  es_dni: isSpanishDni,
} as const satisfies Record<string, (v: string) => boolean>);
export type NationalIdKind = keyof typeof NATIONAL_ID_VALIDATORS;
