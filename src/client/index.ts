export { ConsentClient, type ConsentClientOptions, type ConsentChange, type LastEvent } from './consent-client.js';
export { subscribeEvents, type BusOptions, type NatsBusOptions, type RedisBusOptions, type BusStart, type BusHealth, type BusSubscription, type SubscribeOptions } from './bus.js';
export { verifyWebhook } from '../events/webhook-verify.js';
export * from './consent-lookup.js';
export * from './http-lookup.js';
export * from './filter-by-consent.js';
