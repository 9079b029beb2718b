import { z } from 'zod';
import { natsTarget, natsTargetConfig } from './nats.js';
import { redisStreamsTarget, redisTargetConfig } from './redis-streams.js';
import type { DeliveryTarget } from './target.js';
import { webhookTarget, webhookTargetConfig } from './webhook.js';

export type { DeliveryOutcome, DeliveryTarget, TargetKind } from './target.js';
export { webhookTarget, webhookTargetConfig, type WebhookTargetConfig } from './webhook.js';

/** Where a subscription delivers, by kind: a signed webhook, a NATS JetStream stream, or a Redis stream. */
export const targetConfig = z.discriminatedUnion('kind', [
  webhookTargetConfig.extend({ kind: z.literal('webhook') }),
  natsTargetConfig.extend({ kind: z.literal('nats') }),
  redisTargetConfig.extend({ kind: z.literal('redis') }),
]);

/**
 * The configuration of a delivery target: `{kind:'webhook', url, secret, timeoutMs?}`,
 * `{kind:'nats', url, stream?, subjectPrefix?}` or `{kind:'redis', url, stream?, maxLen?}`.
 */
export type TargetConfig = z.infer<typeof targetConfig>;

/**
 * Opens the adapter for `config` (validated again here). Connection-based adapters connect lazily on their
 * first delivery, so opening never blocks on the network.
 */
export function openTarget(config: TargetConfig): DeliveryTarget {
  const parsed = targetConfig.parse(config);
  switch (parsed.kind) {
    case 'webhook': {
      const { kind: _k, ...rest } = parsed;
      return webhookTarget(rest);
    }
    case 'nats': {
      const { kind: _k, ...rest } = parsed;
      return natsTarget(rest);
    }
    case 'redis': {
      const { kind: _k, ...rest } = parsed;
      return redisStreamsTarget(rest);
    }
  }
}
