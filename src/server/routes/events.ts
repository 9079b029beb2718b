import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Custodian } from '../../app/index.js';
import { EVENT_TYPE_KEYS, type EventType } from '../../core/index.js';
import { DELIVERY_STATUSES, subscriptionInput } from '../../events/index.js';
import { actorOf } from '../auth.js';
import type { ServerMetrics } from '../metrics.js';
import { errorBody, errorResponses, instant } from '../schemas.js';

const eventType = z.enum(EVENT_TYPE_KEYS as [EventType, ...EventType[]]);
const idParams = z.object({ id: z.uuid() }).strict();
const subscription = z.object({
  id: z.string(),
  name: z.string(),
  kind: z.enum(['webhook', 'nats', 'redis']),
  target: z
    .object({
      kind: z.string(),
      url: z.string().describe('Without credentials'),
      timeoutMs: z.number().optional(),
      stream: z.string().optional(),
      subjectPrefix: z.string().optional(),
      maxLen: z.number().optional(),
    })
    .describe('The target without secrets'),
  types: z.array(eventType).readonly(),
  purposes: z.array(z.string()).readonly(),
  maxAttempts: z.number().int(),
  createdAt: z.string(),
  disabledAt: z.string().nullable().describe('Set when the target answered 410 Gone'),
  disabledReason: z.string().nullable(),
});
const created = subscription.extend({ secret: z.string().optional().describe('Webhooks with a generated secret: shown once, never again') });
const delivery = z.object({
  seq: z.number().int(),
  eventId: z.string(),
  status: z.enum(DELIVERY_STATUSES),
  attempts: z.number().int(),
  nextAttemptAt: z.string().nullable(),
  lastError: z.string().nullable(),
  updatedAt: z.string(),
  deliveredAt: z.string().nullable(),
});
const event = z
  .object({
    specversion: z.literal('1.0'),
    id: z.string(),
    source: z.string(),
    type: eventType,
    subject: z.string().optional(),
    time: z.string(),
    datacontenttype: z.literal('application/json'),
    sequence: z.string(),
    schemaversion: z.number().int(),
    data: z.record(z.string(), z.unknown()),
  })
  .describe('CloudEvents 1.0, structured mode (see docs/propagation.md)');
const notFound = { 404: errorBody.describe('No such subscription') };

/** Events: the outbox, subscriptions, their delivery log, and replays. */
export function eventRoutes(custodian: Custodian, metrics: ServerMetrics): FastifyPluginAsyncZod {
  const { subscriptions, dispatcher, outbox } = custodian;
  metrics.watchEventDelivery(() => subscriptions.metrics());
  return async (app) => {
    app.get(
      '/events',
      {
        config: { scope: 'events:read' },
        schema: {
          tags: ['events'],
          summary: 'Read the event outbox in order, after a position',
          querystring: z
            .object({
              after: z.coerce.number().int().min(0).default(0).describe('Outbox position (`sequence`) to read after'),
              limit: z.coerce.number().int().min(1).max(1000).default(100),
            })
            .strict(),
          response: { 200: z.object({ events: z.array(event).readonly(), next: z.number().int().nullable().describe('`after` for the next page; null at the end') }), ...errorResponses },
        },
      },
      async (request) => {
        const events = await outbox.read(request.query.after, request.query.limit);
        return { events, next: events.length === request.query.limit ? Number(events.at(-1)!.sequence) : null };
      },
    );

    app.get(
      '/events/subscriptions',
      { config: { scope: 'events:read' }, schema: { tags: ['events'], summary: 'List event subscriptions (never secrets)', response: { 200: z.object({ subscriptions: z.array(subscription).readonly() }), ...errorResponses } } },
      async () => ({ subscriptions: await subscriptions.list() }),
    );

    app.post(
      '/events/subscriptions',
      {
        config: { scope: 'events:admin' },
        schema: {
          tags: ['events'],
          summary: 'Subscribe a webhook, NATS JetStream stream or Redis stream to events',
          description: 'A webhook secret is generated when none is given and answered once, here. New subscriptions receive events recorded from now on; replay for older ones.',
          body: subscriptionInput,
          response: { 201: created, ...errorResponses },
        },
      },
      async (request, reply) => reply.code(201).send(await subscriptions.create(request.body, actorOf(request))),
    );

    app.get(
      '/events/subscriptions/:id',
      { config: { scope: 'events:read' }, schema: { tags: ['events'], summary: 'One event subscription', params: idParams, response: { 200: subscription, ...errorResponses, ...notFound } } },
      async (request) => subscriptions.get(request.params.id),
    );

    app.delete(
      '/events/subscriptions/:id',
      {
        config: { scope: 'events:admin' },
        schema: { tags: ['events'], summary: 'Delete an event subscription (its delivery log stays)', params: idParams, response: { 204: z.null().describe('Deleted'), ...errorResponses, ...notFound } },
      },
      async (request, reply) => {
        await subscriptions.delete(request.params.id, actorOf(request));
        return reply.code(204).send(null);
      },
    );

    app.get(
      '/events/subscriptions/:id/deliveries',
      {
        config: { scope: 'events:read' },
        schema: {
          tags: ['events'],
          summary: 'Deliveries of a subscription, newest first',
          params: idParams,
          querystring: z
            .object({
              status: z.enum(DELIVERY_STATUSES).optional(),
              before: z.coerce.number().int().min(1).optional().describe('Only positions before this one (paging)'),
              limit: z.coerce.number().int().min(1).max(1000).default(100),
            })
            .strict(),
          response: { 200: z.object({ deliveries: z.array(delivery).readonly() }), ...errorResponses, ...notFound },
        },
      },
      async (request) => {
        const { status, before, limit } = request.query;
        return { deliveries: await subscriptions.deliveries(request.params.id, { limit, ...(status === undefined ? {} : { status }), ...(before === undefined ? {} : { beforeSeq: before }) }) };
      },
    );

    app.post(
      '/events/subscriptions/:id/replay',
      {
        config: { scope: 'events:admin' },
        schema: {
          tags: ['events'],
          summary: 'Deliver past events again (dead letters included), from a position or an instant',
          description: 'Events keep their ids: receivers de-duplicate by id. Events pruned from the outbox cannot be replayed.',
          params: idParams,
          body: z
            .object({ fromSeq: z.number().int().min(1).optional().describe('First outbox position (inclusive)'), fromTime: instant.optional().describe('First instant (inclusive)') })
            .strict()
            .refine((b) => (b.fromSeq === undefined) !== (b.fromTime === undefined), 'give exactly one of fromSeq and fromTime'),
          response: { 202: z.object({ queued: z.number().int().describe('Deliveries queued') }), ...errorResponses, ...notFound },
        },
      },
      async (request, reply) => {
        const { fromSeq, fromTime } = request.body;
        const queued = await dispatcher.replay(request.params.id, fromSeq !== undefined ? { fromSeq } : { fromTime: new Date(Date.parse(fromTime!)).toISOString() }, actorOf(request));
        return reply.code(202).send({ queued });
      },
    );
  };
}
