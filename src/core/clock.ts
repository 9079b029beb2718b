/** Source of time, injected so that deadlines and expiry are testable without sleeping. */
export interface Clock {
  /** Milliseconds since the epoch, UTC. */
  now(): number;
}

/** The wall clock. */
export const systemClock: Clock = { now: () => Date.now() };

/** A clock for tests that moves only when told. */
export class ManualClock implements Clock {
  #ms: number;
  constructor(start: number | string = '2026-01-01T00:00:00.000Z') {
    this.#ms = typeof start === 'number' ? start : Date.parse(start);
  }
  now(): number {
    return this.#ms;
  }
  /** Moves the clock forward (or backward with a negative value). */
  advance(ms: number): void {
    this.#ms += ms;
  }
  set(at: number | string): void {
    this.#ms = typeof at === 'number' ? at : Date.parse(at);
  }
}

/**
 * Whether something read at `since` may still be trusted at `now` for `ttlMs`. A clock that moved backwards
 * (NTP step, VM resume) makes it stale rather than trusted forever.
 */
export function isFresh(since: number, now: number, ttlMs: number): boolean {
  const age = now - since;
  return age >= 0 && age < ttlMs;
}
