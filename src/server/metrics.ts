import type { FastifyInstance } from 'fastify';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

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
