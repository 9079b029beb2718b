export { Outbox, toCloudEvent } from './outbox.js';
