export { Outbox, toCloudEvent } from './outbox.js';
export { EventDispatcher, type EventDispatcherDeps, type EventDispatcherOptions, type DispatchReport, type ReplayFrom } from './dispatcher.js';
export {
  EventSubscriptions,
  DEFAULT_MAX_ATTEMPTS,
  DELIVERY_STATUSES,
  matchesFilter,
  subscriptionInput,
  type CreatedSubscription,
  type Delivery,
  type DeliveryAttempt,
  type DeliveryStatus,
  type EventSubscriptionsDeps,
  type Subscription,
  type SubscriptionCipher,
  type SubscriptionFilter,
  type SubscriptionInput,
  type SubscriptionMetrics,
  type SubscriptionTarget,
} from './subscriptions.js';
export { openTarget, targetConfig, webhookTarget, webhookTargetConfig, type DeliveryOutcome, type DeliveryTarget, type TargetConfig, type TargetKind, type WebhookTargetConfig } from './targets/index.js';
export { signWebhook, verifyWebhook, webhookKey, WEBHOOK_SECRET_PREFIX, WEBHOOK_TOLERANCE_SECONDS, type WebhookFailure, type WebhookHeaders, type WebhookVerdict } from './webhook-verify.js';
