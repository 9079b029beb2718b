import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  isBrazilianCpf,
  isCanadianSin,
  isCreditCardNumber,
  isDutchBsn,
  isEmail,
  isFrenchNir,
  isIban,
  isIpAddress,
  isPersonName,
  isPhoneNumber,
  isPlausibleBirthDate,
  isPostalCode,
  isSpanishDni,
  isStreetAddress,
  isUkNino,
  isUsSsn,
  luhnCheckDigit,
  luhnValid,
  mod97,
} from '../../src/scanner/index.js';
import * as gen from './generators.js';

/** Replaces the digit at `i` (counting digits only) by a different digit. */
function changeDigit(value: string, i: number, delta: number): string {
  const positions = [...value].flatMap((c, k) => (/\d/.test(c) ? [k] : []));
  const k = positions[i % positions.length]!;
  const d = (Number(value[k]) + delta) % 10;
  return value.slice(0, k) + String(d) + value.slice(k + 1);
}

const seeds = fc.integer({ min: 1, max: 2 ** 31 - 1 });
const delta = fc.integer({ min: 1, max: 9 });
const pos = fc.nat();

describe('Luhn', () => {
  it('accepts published test numbers and rejects their neighbours', () => {
    expect(luhnValid('79927398713')).toBe(true);
    expect(luhnValid('79927398710')).toBe(false);
    expect(luhnValid('4111111111111111')).toBe(true);
    expect(luhnValid('4111111111111112')).toBe(false);
    expect(luhnValid('')).toBe(false);
    expect(luhnValid('12a4')).toBe(false);
  });

  it('property: the computed check digit validates, and any single changed digit fails', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^\d{5,18}$/), pos, delta, (payload, i, dlt) => {
        const full = payload + String(luhnCheckDigit(payload));
        expect(luhnValid(full)).toBe(true);
        expect(luhnValid(changeDigit(full, i, dlt))).toBe(false);
      }),
    );
  });
});

describe('credit card numbers', () => {
  it('accepts test PANs of the schemes, grouped or not', () => {
    for (const pan of ['4111 1111 1111 1111', '5555-5555-5555-4444', '378282246310005', '6011111111111117', '3530111333300000', '4012888888881881', '2223003122003222']) {
      expect(isCreditCardNumber(pan), pan).toBe(true);
    }
  });

  it('rejects Luhn-failing 16-digit order numbers, unknown issuer prefixes and wrong lengths', () => {
    expect(isCreditCardNumber('4111111111111112')).toBe(false);
    expect(isCreditCardNumber('1234567812345670')).toBe(false); // Luhn-valid, no issuer starts with 1
    expect(isCreditCardNumber('41111111111111')).toBe(false);
    expect(isCreditCardNumber('4111 1111 1111 111a')).toBe(false);
  });

  it('property: generated card numbers pass; one changed digit fails; non-Luhn 16-digit numbers fail', () => {
    fc.assert(
      fc.property(seeds, pos, delta, (seed, i, dlt) => {
        const r = gen.rng(seed);
        const pan = gen.cardNumber(r);
        expect(isCreditCardNumber(pan)).toBe(true);
        // A change in the issuer prefix may leave the schemes; elsewhere Luhn must catch it.
        expect(isCreditCardNumber(changeDigit(pan, 4 + (i % 12), dlt))).toBe(false);
        expect(isCreditCardNumber(gen.nonLuhn16(r))).toBe(false);
      }),
    );
  });
});

describe('IBAN (ISO 13616, MOD 97-10)', () => {
  it('accepts registry examples, printed with or without spaces', () => {
    for (const v of ['GB82 WEST 1234 5698 7654 32', 'NL91ABNA0417164300', 'DE89370400440532013000', 'FR1420041010050500013M02606', 'be68539007547034']) expect(isIban(v), v).toBe(true);
  });

  it('rejects a wrong check, a wrong length for the country and unknown countries', () => {
    expect(isIban('GB82WEST12345698765433')).toBe(false);
    expect(isIban('NL91ABNA04171643001')).toBe(false);
    expect(isIban('QQ91ABNA0417164300')).toBe(false);
  });

  it('mod97 works piecewise on long inputs', () => {
    expect(mod97('3214282912345698765432161182')).toBe(1);
  });

  it('property: generated IBANs pass and any single changed digit fails', () => {
    fc.assert(
      fc.property(seeds, pos, delta, (seed, i, dlt) => {
        const v = gen.iban(gen.rng(seed));
        expect(isIban(v)).toBe(true);
        expect(isIban(changeDigit(v, i, dlt))).toBe(false);
      }),
    );
  });
});

describe('national identifiers', () => {
  it('US SSN: SSA area, group and serial rules; bare digits only when allowed', () => {
    expect(isUsSsn('123-45-6789')).toBe(true);
    for (const bad of ['000-12-3456', '666-12-3456', '912-12-3456', '123-00-4567', '123-45-0000', '123456789', '12-345-6789']) expect(isUsSsn(bad), bad).toBe(false);
    expect(isUsSsn('123456789', true)).toBe(true);
  });

  it('UK NINO: prefix letter rules and suffix A–D', () => {
    expect(isUkNino('AB123456C')).toBe(true);
    expect(isUkNino('ab 12 34 56 c')).toBe(true);
    for (const bad of ['DA123456C', 'AD123456C', 'GB123456A', 'AB123456E', 'AB12345C', 'ZZ123456A']) expect(isUkNino(bad), bad).toBe(false);
  });

  it('property: generated NINOs pass', () => {
    fc.assert(
      fc.property(seeds, (seed) => {
        expect(isUkNino(gen.nino(gen.rng(seed)))).toBe(true);
      }),
    );
  });

  it('Dutch BSN: the 11-proof', () => {
    expect(isDutchBsn('111222333')).toBe(true);
    expect(isDutchBsn('123456782')).toBe(true);
    expect(isDutchBsn('123456789')).toBe(false);
    expect(isDutchBsn('000000000')).toBe(false);
  });

  it('property: generated BSNs pass and one changed digit fails', () => {
    fc.assert(
      fc.property(seeds, pos, delta, (seed, i, dlt) => {
        const v = gen.bsn(gen.rng(seed));
        expect(isDutchBsn(v)).toBe(true);
        expect(isDutchBsn(changeDigit(v, i, dlt))).toBe(false);
      }),
    );
  });

  it('Brazilian CPF: two mod-11 check digits; repeated digits rejected', () => {
    expect(isBrazilianCpf('529.982.247-25')).toBe(true);
    expect(isBrazilianCpf('52998224725')).toBe(true);
    expect(isBrazilianCpf('529.982.247-26')).toBe(false);
    expect(isBrazilianCpf('111.111.111-11')).toBe(false);
    expect(isBrazilianCpf('529.982247-25')).toBe(false);
  });

  it('property: generated CPFs pass; a changed check digit always fails, a changed body digit almost always', () => {
    // CPF maps remainders 0 and 1 of its mod-11 sums both to check digit 0, so a few single-digit changes of
    // the nine body digits keep both check digits: unlike Luhn, the scheme does not catch every one.
    fc.assert(
      fc.property(seeds, fc.integer({ min: 9, max: 10 }), delta, (seed, i, dlt) => {
        const v = gen.cpf(gen.rng(seed));
        fc.pre(!/^(\d)\1{10}$/.test(v.replace(/\D/g, '')));
        expect(isBrazilianCpf(v)).toBe(true);
        expect(isBrazilianCpf(changeDigit(v, i, dlt))).toBe(false);
      }),
    );
    const samples = fc.sample(fc.tuple(seeds, fc.integer({ min: 0, max: 8 }), delta), { numRuns: 2000, seed: 42 });
    const caught = samples.filter(([seed, i, dlt]) => !isBrazilianCpf(changeDigit(gen.cpf(gen.rng(seed)), i, dlt))).length;
    expect(caught / samples.length).toBeGreaterThan(0.97);
  });

  it('Canadian SIN: Luhn, never starting with 0 or 8', () => {
    expect(isCanadianSin('046 454 286')).toBe(false);
    expect(isCanadianSin('130 692 544')).toBe(true);
    expect(isCanadianSin('130-692-544')).toBe(true);
    expect(isCanadianSin('130692545')).toBe(false);
    expect(isCanadianSin('800000002')).toBe(false);
  });

  it('property: generated SINs pass and one changed digit fails', () => {
    fc.assert(
      fc.property(seeds, pos, delta, (seed, i, dlt) => {
        const v = gen.sin(gen.rng(seed));
        expect(isCanadianSin(v)).toBe(true);
        const changed = changeDigit(v, i, dlt);
        fc.pre(!/^[08]/.test(changed));
        expect(isCanadianSin(changed)).toBe(false);
      }),
    );
  });

  it('French NIR: the key is 97 − (number mod 97); Corsica 2A/2B', () => {
    expect(isFrenchNir('2 55 08 14 168 025 38')).toBe(true);
    expect(isFrenchNir('255081416802539')).toBe(false);
    expect(isFrenchNir('555081416802538')).toBe(false);
    // 2A counts as 19 in the key computation.
    const body = '1850219123456';
    const key = String(97n - (BigInt(body) % 97n)).padStart(2, '0');
    expect(isFrenchNir(`18502 2A123456${key}`.replace(' ', ''))).toBe(true);
  });

  it('property: generated NIRs pass and one changed digit fails', () => {
    fc.assert(
      fc.property(seeds, pos, delta, (seed, i, dlt) => {
        const v = gen.nir(gen.rng(seed));
        expect(isFrenchNir(v)).toBe(true);
        expect(isFrenchNir(changeDigit(v, i, dlt))).toBe(false);
      }),
    );
  });

  it('Spanish DNI and NIE: the mod-23 letter', () => {
    expect(isSpanishDni('12345678Z')).toBe(true);
    expect(isSpanishDni('12345678-z')).toBe(true);
    expect(isSpanishDni('12345678A')).toBe(false);
    expect(isSpanishDni('X1234567L')).toBe(true);
    expect(isSpanishDni('X1234567A')).toBe(false);
  });

  it('property: generated DNIs pass and one changed digit fails', () => {
    fc.assert(
      fc.property(seeds, pos, delta, (seed, i, dlt) => {
        const v = gen.dni(gen.rng(seed));
        expect(isSpanishDni(v)).toBe(true);
        expect(isSpanishDni(changeDigit(v, i, dlt))).toBe(false);
      }),
    );
  });
});

describe('contact data', () => {
  it('e-mail addresses', () => {
    for (const v of ['ada@example.com', 'first.last+tag@mail.example.org', "o'neill@example.co.uk"]) expect(isEmail(v), v).toBe(true);
    for (const v of ['Hello {{name}}', 'ada@', '@example.com', 'ada@example', 'ada example.com', 'a..b@example.com', 'ada@-example.com', `${'a'.repeat(65)}@example.com`]) expect(isEmail(v), v).toBe(false);
  });

  it('phone numbers: E.164 and grouped always; bare digits only when the name says phone', () => {
    for (const v of ['+31612345678', '+31 6 1234 5678', '(415) 555-0100', '+1-415-555-0100', '020 7946 0958']) expect(isPhoneNumber(v, true), v).toBe(true);
    expect(isPhoneNumber('0612345678', true)).toBe(false);
    expect(isPhoneNumber('0612345678')).toBe(true);
    for (const v of ['+31', '+0612345678', 'Pixel 8', 'iPhone 15 Pro', '12', '1.234.567,89 EUR']) expect(isPhoneNumber(v), v).toBe(false);
  });

  it('IP addresses, v4 and v6', () => {
    for (const v of ['192.0.2.1', '2001:db8::1', '::1']) expect(isIpAddress(v), v).toBe(true);
    for (const v of ['256.1.1.1', '10.0.0.0/8', 'office VPN', '1.2.3']) expect(isIpAddress(v), v).toBe(false);
  });

  it('dates of birth: real calendar dates from 1900 to today', () => {
    const now = new Date('2025-06-01T00:00:00Z');
    for (const v of ['1990-05-17', '1990-05-17 00:00:00', '1990-05-17T00:00:00Z', '1990-05-17 00:00:00+00']) expect(isPlausibleBirthDate(v, now), v).toBe(true);
    for (const v of ['1890-01-01', '2030-01-01', '1990-02-30', '1990-05-17 13:45:00', '17/05/1990']) expect(isPlausibleBirthDate(v, now), v).toBe(false);
  });

  it('names, street lines and postal codes', () => {
    for (const v of ['Ada Lovelace', 'van der Berg', "O'Neill", 'Zoë', 'José María García']) expect(isPersonName(v), v).toBe(true);
    for (const v of ['SKU-1234', 'widget v2', 'the quick brown fox jumps over', 'a']) expect(isPersonName(v), v).toBe(false);
    for (const v of ['12 Baker Street', 'Hauptstraße 5a', 'Keizersgracht 123, 1015 CJ Amsterdam']) expect(isStreetAddress(v), v).toBe(true);
    for (const v of ['Baker Street', '12345', 'n/a']) expect(isStreetAddress(v), v).toBe(false);
    for (const v of ['1015 CJ', '10115', '94105-1234', 'SW1A 1AA', 'K1A 0B1']) expect(isPostalCode(v), v).toBe(true);
    for (const v of ['ABC', '123', 'Amsterdam']) expect(isPostalCode(v), v).toBe(false);
  });
});
