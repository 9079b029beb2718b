import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { addMonths, isIsoInstant, isUuid, uuidv7, uuidv7Time } from '../../src/core/index.js';
import { minimisePageUrl, truncateIp } from '../../src/ledger/index.js';

describe('uuidv7', () => {
  it('embeds the given millisecond and is a canonical v7 UUID', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 47 }), (ms) => {
        const id = uuidv7(ms);
        expect(isUuid(id)).toBe(true);
        expect(id[14]).toBe('7');
        expect(['8', '9', 'a', 'b']).toContain(id[19]);
        expect(uuidv7Time(id)).toBe(ms);
      }),
    );
  });

  it('sorts in generation order for non-decreasing times (the ledger orders events by id)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 2, maxLength: 200 }), fc.integer({ min: 1e12, max: 2e12 }), (steps, start) => {
        let t = start;
        const ids = steps.map((s) => uuidv7((t += s)));
        expect([...ids].sort()).toEqual(ids);
        expect(new Set(ids).size).toBe(ids.length);
      }),
    );
  });
});

describe('time', () => {
  it.each([
    ['2026-11-22T10:00:00Z', true],
    ['2026-11-22T10:00:00.123+02:00', true],
    ['2024-02-29T00:00:00Z', true],
    ['2025-02-29T00:00:00Z', false],
    ['2026-13-01T00:00:00Z', false],
    ['2026-11-22T24:00:00Z', false],
    ['2026-11-22T10:00:00', false],
    ['2026-11-22', false],
    ['yesterday', false],
    ['', false],
  ])('isIsoInstant(%s) = %s', (value, expected) => {
    expect(isIsoInstant(value)).toBe(expected);
  });

  it('adds calendar months, clamping to the last day of the month', () => {
    expect(new Date(addMonths(Date.parse('2026-01-31T12:00:00.000Z'), 1)).toISOString()).toBe('2026-02-28T12:00:00.000Z');
    expect(new Date(addMonths(Date.parse('2028-01-31T00:00:00.000Z'), 1)).toISOString()).toBe('2028-02-29T00:00:00.000Z');
    expect(new Date(addMonths(Date.parse('2026-11-22T07:00:00.000Z'), 13)).toISOString()).toBe('2027-12-22T07:00:00.000Z');
  });
});

describe('evidence minimisation', () => {
  it('truncates IPv4 to /24', () => {
    fc.assert(
      fc.property(fc.ipV4(), (ip) => {
        const t = truncateIp(ip)!;
        expect(t.split('.').slice(0, 3)).toEqual(ip.split('.').slice(0, 3));
        expect(t.endsWith('.0')).toBe(true);
      }),
    );
  });

  it('truncates IPv6 to /48: the first three hextets survive, the rest is zero', () => {
    const expand = (ip: string) => {
      const [h, t] = ip.includes('::') ? ip.split('::') : [ip, undefined];
      const head = h ? h.split(':') : [];
      const tail = t ? t.split(':') : [];
      return [...head, ...Array<string>(8 - head.length - tail.length).fill('0'), ...tail].map((x) => parseInt(x, 16));
    };
    fc.assert(
      fc.property(fc.ipV6().filter((ip) => !ip.includes('.')), (ip) => {
        const t = truncateIp(ip)!;
        const a = expand(ip);
        const b = expand(t);
        expect(b.slice(0, 3)).toEqual(a.slice(0, 3));
        expect(b.slice(3)).toEqual([0, 0, 0, 0, 0]);
      }),
    );
    expect(truncateIp('2001:db8:abcd:12:1:2:3:4')).toBe('2001:db8:abcd::');
    expect(truncateIp('2001:db8:0:12::1')).toBe('2001:db8::');
    expect(truncateIp('::ffff:c000:237')).toBe('::ffff:192.0.2.0');
    expect(truncateIp('::ffff:192.0.2.55')).toBe('::ffff:192.0.2.0');
    expect(truncateIp('not an ip')).toBeUndefined();
  });

  it('drops query, fragment and credentials from page URLs', () => {
    expect(minimisePageUrl('https://user:pw@shop.example.com/cart?email=a@example.com#x')).toBe('https://shop.example.com/cart');
    expect(minimisePageUrl('javascript:alert(1)')).toBeUndefined();
  });
});
