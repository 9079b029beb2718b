import { luhnCheckDigit, mod97 } from '../../src/scanner/index.js';
import { mulberry32 } from '../support/random.js';

/* Generators of valid (synthetic) identifiers for tests and the labelled database. No real person's data. */

/** A small seeded PRNG (mulberry32), so fixtures are the same on every run. */
export const rng = mulberry32;

export type Rand = () => number;
export const int = (r: Rand, lo: number, hi: number): number => lo + Math.floor(r() * (hi - lo + 1));
export const digits = (r: Rand, n: number): string => Array.from({ length: n }, () => String(int(r, 0, 9))).join('');
export const pick = <T>(r: Rand, xs: readonly T[]): T => xs[int(r, 0, xs.length - 1)]!;

export function cardNumber(r: Rand): string {
  const prefix = pick(r, ['4', '51', '52', '55', '2221']);
  const body = prefix + digits(r, 15 - prefix.length);
  return body + String(luhnCheckDigit(body));
}

/** A 16-digit number that fails Luhn (the order-number decoy). */
export function nonLuhn16(r: Rand): string {
  const body = String(int(r, 1, 9)) + digits(r, 14);
  return body + String((luhnCheckDigit(body) + int(r, 1, 9)) % 10);
}

export function iban(r: Rand, country: 'NL' | 'DE' | 'GB' | 'FR' = pick(r, ['NL', 'DE', 'GB', 'FR'] as const)): string {
  const bban = country === 'NL' ? pick(r, ['ABNA', 'INGB', 'RABO']) + digits(r, 10) : country === 'DE' ? digits(r, 18) : country === 'GB' ? 'NWBK' + digits(r, 14) : digits(r, 23);
  const check = 98 - mod97(bban + country + '00');
  return `${country}${String(check).padStart(2, '0')}${bban}`;
}

export function ssn(r: Rand): string {
  let area = int(r, 1, 899);
  if (area === 666) area = 667;
  return `${String(area).padStart(3, '0')}-${String(int(r, 1, 99)).padStart(2, '0')}-${String(int(r, 1, 9999)).padStart(4, '0')}`;
}

export function nino(r: Rand): string {
  const first = 'ABCEGHJKLMNOPRSTWXYZ';
  const second = 'ABCEGHJKLMNPRSTWXYZ';
  let p = '';
  do p = pick(r, [...first]) + pick(r, [...second]);
  while (['BG', 'GB', 'KN', 'NK', 'NT', 'TN', 'ZZ'].includes(p));
  return `${p}${digits(r, 6)}${pick(r, ['A', 'B', 'C', 'D'])}`;
}

export function bsn(r: Rand): string {
  for (;;) {
    const d = String(int(r, 1, 9)) + digits(r, 7);
    let sum = 0;
    for (let i = 0; i < 8; i++) sum += (9 - i) * Number(d[i]);
    const last = sum % 11;
    if (last <= 9) return d + String(last);
  }
}

export function cpf(r: Rand, formatted = true): string {
  const d = digits(r, 9).split('').map(Number);
  for (const len of [9, 10]) {
    let sum = 0;
    for (let i = 0; i < len; i++) sum += (len + 1 - i) * d[i]!;
    const rest = sum % 11;
    d.push(rest < 2 ? 0 : 11 - rest);
  }
  const s = d.join('');
  return formatted ? `${s.slice(0, 3)}.${s.slice(3, 6)}.${s.slice(6, 9)}-${s.slice(9)}` : s;
}

export function sin(r: Rand): string {
  const body = String(pick(r, [1, 2, 3, 4, 5, 6, 7, 9])) + digits(r, 7);
  const s = body + String(luhnCheckDigit(body));
  return `${s.slice(0, 3)}-${s.slice(3, 6)}-${s.slice(6)}`;
}

export function nir(r: Rand): string {
  const body = `${int(r, 1, 2)}${String(int(r, 40, 99)).padStart(2, '0')}${String(int(r, 1, 12)).padStart(2, '0')}${String(int(r, 1, 95)).padStart(2, '0')}${digits(r, 3)}${digits(r, 3)}`;
  const key = 97n - (BigInt(body) % 97n);
  return body + String(key).padStart(2, '0');
}

export function dni(r: Rand): string {
  const n = int(r, 10_000_000, 99_999_999);
  return `${n}${'TRWAGMYFPDXBNJZSQVHLCKE'[n % 23]}`;
}

const FIRST = ['Ada', 'Grace', 'Alan', 'Marie', 'Noor', 'Sven', 'Chiara', 'Kenji', 'Amara', 'Lucas', 'Sofía', 'Jan', 'Zoë', 'Émile', 'Ingrid', 'Tariq'];
const LAST = ['Lovelace', 'Hopper', 'Turing', 'Curie', 'de Vries', 'Okafor', 'Rossi', 'Tanaka', 'Müller', "O'Neill", 'García', 'van der Berg', 'Nakamura', 'Smith-Jones'];
const STREETS = ['Baker Street', 'Keizersgracht', 'Hauptstraße', 'Rue de Rivoli', 'Elm Avenue', 'Calle Mayor', 'Oak Lane'];
const CITIES = ['Amsterdam', 'London', 'Berlin', 'Paris', 'Madrid', 'Toronto', 'São Paulo', 'New York'];

export const firstName = (r: Rand): string => pick(r, FIRST);
export const lastName = (r: Rand): string => pick(r, LAST);
export const fullName = (r: Rand): string => `${firstName(r)} ${lastName(r)}`;
export const street = (r: Rand): string => (r() < 0.5 ? `${int(r, 1, 250)} ${pick(r, STREETS)}` : `${pick(r, STREETS)} ${int(r, 1, 250)}`);
export const city = (r: Rand): string => pick(r, CITIES);
export const postcode = (r: Rand): string => pick(r, [`${int(r, 1000, 9999)} ${pick(r, ['AB', 'XK', 'RT'])}`, String(int(r, 10000, 99999)), `SW1A ${int(r, 1, 9)}AA`]);
export const email = (r: Rand, i: number): string => `${pick(r, ['ada', 'grace', 'alan', 'marie', 'noor'])}.${i}@${pick(r, ['example.com', 'example.org', 'mail.test'])}`;
export const phone = (r: Rand): string => pick(r, [`+31 6 ${digits(r, 8)}`, `+44 20 ${digits(r, 4)} ${digits(r, 4)}`, `(${int(r, 200, 989)}) ${int(r, 200, 989)}-${digits(r, 4)}`, `+1-${int(r, 200, 989)}-555-${digits(r, 4)}`]);
export const ipv4 = (r: Rand): string => `${int(r, 1, 223)}.${int(r, 0, 255)}.${int(r, 0, 255)}.${int(r, 1, 254)}`;
export const ipv6 = (r: Rand): string => `2001:db8:${int(r, 0, 65535).toString(16)}::${int(r, 1, 65535).toString(16)}`;
export const birthDate = (r: Rand): string => `${int(r, 1935, 2006)}-${String(int(r, 1, 12)).padStart(2, '0')}-${String(int(r, 1, 28)).padStart(2, '0')}`;
