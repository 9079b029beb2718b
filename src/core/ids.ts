import { randomFillSync } from 'node:crypto';

const POOL = Buffer.allocUnsafe(16 * 256);
let poolOffset = POOL.length;

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

let lastMs = -1;
let counter = 0; // 12-bit rand_a counter, RFC 9562 §6.2 method 1

/**
 * A UUIDv7 (RFC 9562) for `ms`. Within one process, ids made for the same or a later millisecond sort
 * after every earlier one (monotonic counter in rand_a), so id order equals recording order. When the
 * clock goes backwards the id follows the clock, keeping id order equal to time order.
 */
export function uuidv7(ms: number = Date.now()): string {
  if (poolOffset === POOL.length) {
    randomFillSync(POOL);
    poolOffset = 0;
  }
  const bytes = POOL.subarray(poolOffset, poolOffset + 16);
  poolOffset += 16;
  if (ms === lastMs) {
    counter++;
    if (counter > 0xfff) {
      // Counter exhausted within one millisecond: borrow the next millisecond.
      ms = lastMs + 1;
      counter = 0;
    }
  } else {
    counter = bytes[6]! & 0x07; // random start, leaving room for increments
  }
  lastMs = ms;
  const hi = Math.floor(ms / 2 ** 32);
  const lo = ms >>> 0;
  bytes[0] = (hi >>> 8) & 0xff;
  bytes[1] = hi & 0xff;
  bytes[2] = (lo >>> 24) & 0xff;
  bytes[3] = (lo >>> 16) & 0xff;
  bytes[4] = (lo >>> 8) & 0xff;
  bytes[5] = lo & 0xff;
  bytes[6] = 0x70 | ((counter >>> 8) & 0x0f);
  bytes[7] = counter & 0xff;
  bytes[8] = 0x80 | (bytes[8]! & 0x3f);
  let s = '';
  for (let i = 0; i < 16; i++) {
    s += HEX[bytes[i]!]!;
    if (i === 3 || i === 5 || i === 7 || i === 9) s += '-';
  }
  return s;
}

/** The millisecond timestamp embedded in a UUIDv7. */
export function uuidv7Time(id: string): number {
  return parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
}

/** True for a lower-case canonical UUID string. */
export function isUuid(value: string): boolean {
  return UUID_RE.test(value);
}
