import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Prometheus metrics of one server. Labels carry route patterns and codes, never ids or personal data. */
export class ServerMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'custodian_http_requests_total',
    help: 'HTTP requests by method, route pattern and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
  });
  readonly duration = new Histogram({
    name: 'custodian_http_request_duration_seconds',
    help: 'HTTP request duration by route pattern',
    labelNames: ['method', 'route'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly consentEvents = new Counter({
    name: 'custodian_consent_events_total',
    help: 'Consent events recorded, by decision and collection method',
    labelNames: ['decision', 'method'] as const,
    registers: [this.registry],
  });
  readonly consentChecks = new Counter({
    name: 'custodian_consent_checks_total',
    help: 'Consent checks answered, by outcome',
    labelNames: ['allowed'] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'custodian_' });
  }

  /**
   * Event delivery gauges per subscription (label: subscription id), read from the store when scraped: lag in
   * outbox positions, age of the oldest pending delivery, pending deliveries, dead letters, failed attempts.
   */
  watchEventDelivery(read: () => Promise<ReadonlyArray<{ id: string; lag: number; oldestPendingSeconds: number; pending: number; dead: number; failures: number }>>): void {
    type Figures = Awaited<ReturnType<typeof read>>[number];
    // One store read per scrape, shared by the gauges (prom-client collects them concurrently).
    let last: { at: number; figures: Promise<ReadonlyArray<Figures> | undefined> } | undefined;
    const load = () => {
      if (last === undefined || Date.now() - last.at > 500) last = { at: Date.now(), figures: read().catch(() => undefined) };
      return last.figures;
    };
    const gauge = (name: string, help: string, pick: (m: Figures) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ['subscription'] as const,
        registers: [this.registry],
        async collect() {
          const all = await load();
          if (all === undefined) return;
          this.reset();
          for (const m of all) this.set({ subscription: m.id }, pick(m));
        },
      });
    gauge('custodian_event_subscription_lag', 'Outbox positions not yet delivered to the subscription', (m) => m.lag);
    gauge('custodian_event_subscription_oldest_pending_seconds', 'Age of the oldest event waiting for delivery', (m) => m.oldestPendingSeconds);
    gauge('custodian_event_deliveries_pending', 'Deliveries waiting (including retries)', (m) => m.pending);
    gauge('custodian_event_deliveries_dead', 'Dead-lettered deliveries', (m) => m.dead);
    gauge('custodian_event_delivery_failures', 'Failed delivery attempts so far', (m) => m.failures);
  }

  /** Counts and times every request by its route pattern. */
  install(app: FastifyInstance): void {
    app.addHook('onResponse', async (request, reply) => {
      const route = request.routeOptions.url ?? 'unmatched';
      const labels = { method: request.method, route };
      this.requests.inc({ ...labels, status: String(reply.statusCode) });
      this.duration.observe(labels, reply.elapsedTime / 1000);
    });
  }
}
