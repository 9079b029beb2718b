import type { CustodianEvent } from '../../core/index.js';

/** The outcome of delivering one event to a target. */
export interface DeliveryOutcome {
  readonly ok: boolean;
  /** For failures: whether trying again later may succeed (network errors, 5xx, 408, 429, broker unavailable). */
  readonly retryable: boolean;
  /** HTTP status for webhooks. */
  readonly status?: number;
  /** A short, id-only description of the failure (never payload content). */
  readonly error?: string;
  /** For retryable failures: the earliest retry the target asked for (e.g. HTTP `Retry-After`), in ms. */
  readonly retryAfterMs?: number;
  /** For non-retryable failures: the target is gone for good (HTTP 410): the subscription should be disabled. */
  readonly gone?: boolean;
  readonly durationMs: number;
}

/**
 * Where a subscription's events go. Adapters: signed webhooks, NATS JetStream, Redis Streams.
 * `deliver` sends the events in the order given (the dispatcher passes them in outbox order, at most one
 * pending event per subject unless the target preserves order itself) and answers one outcome per event
 * attempted; it stops at the first failure, so the answer may be shorter than the input.
 */
export interface DeliveryTarget {
  readonly kind: TargetKind;
  deliver(events: readonly CustodianEvent[], signal?: AbortSignal): Promise<DeliveryOutcome[]>;
  close(): Promise<void>;
}

export type TargetKind = 'webhook' | 'nats' | 'redis';
