/**
 * The events Custodian tells other services about: a closed list, each with what it means and what a
 * receiving service is expected to do. The envelope uses CloudEvents 1.0 attribute names
 * (https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/spec.md) so CloudEvents SDKs can read it.
 * Events carry ids only (subject id, purpose keys, request ids), never personal details.
 */
export const EVENT_TYPES = {
  'consent.granted': 'The subject granted consent for the purpose: processing may start.',
  'consent.denied': 'The subject refused consent (or objected, or a GPC signal opted them out): do not process for the purpose.',
  'consent.withdrawn': 'The subject withdrew consent (GDPR Art. 7(3)) or objected: stop processing for the purpose now.',
  'consent.expired': 'A grant reached its expiry: stop processing for the purpose until consent is asked again.',
  'subject.restricted': 'Processing of the subject is restricted (GDPR Art. 18): store the data, do not otherwise process it.',
  'subject.restriction_lifted': 'A restriction of processing ended (GDPR Art. 18(3)): processing may resume as the consent state allows.',
  'subject.objected': 'The subject objected to processing or opted out of sale/sharing/targeted advertising: the purposes listed stop.',
  'subject.erased': 'The subject’s data was erased and their keys shredded: delete any copy you hold (GDPR Art. 17, Art. 19).',
  'request.completed': 'A data subject request reached a final status (completed, partially_completed, rejected or failed).',
  'incident.opened': 'A personal data breach incident was recorded (or a detection rule opened a suspected one): start the breach response (data: incidentId, status, source).',
  'incident.deadline_approaching': 'A breach notification deadline is near (data: incidentId, ruleId, audience, dueAt, leftMs): notify the authority or people before it expires.',
  'incident.deadline_missed': 'A breach notification deadline passed without the notification being recorded (data: incidentId, ruleId, audience, dueAt): notify now and document the reasons for the delay (GDPR Art. 33(1)).',
} as const;

/** One of the documented event types. */
export type EventType = keyof typeof EVENT_TYPES;

/** Every event type, in documentation order. */
export const EVENT_TYPE_KEYS = Object.keys(EVENT_TYPES) as EventType[];

/** Version of the `data` schema of every event type; bumped on an incompatible change. */
export const EVENT_SCHEMA_VERSION = 1;

/** The CloudEvents `source` of events from this Custodian installation. */
export const EVENT_SOURCE = 'urn:custodian';

/** What a module hands to the outbox: the type, the subject and purposes it concerns, and its data. */
export interface EventInput {
  readonly type: EventType;
  /** The subject the event is about (the application's subject id), or null (e.g. a request without a user id). */
  readonly subjectId: string | null;
  /** The purposes concerned; empty when the event concerns the subject as a whole. */
  readonly purposes: readonly string[];
  /** Type-specific facts: ids, decisions, times. Never personal details. */
  readonly data: Readonly<Record<string, unknown>>;
}

/**
 * An event as delivered (CloudEvents 1.0 structured mode, JSON). `sequence` is the outbox position: it grows
 * with commit order, so a consumer keeps, per subject, the highest sequence it applied and ignores older ones.
 */
export interface CustodianEvent {
  readonly specversion: '1.0';
  /** UUIDv7; the de-duplication key for consumers (and the JetStream message id). */
  readonly id: string;
  readonly source: string;
  readonly type: EventType;
  /** The subject id, when the event concerns one subject. */
  readonly subject?: string;
  /** UTC ISO-8601 with milliseconds. */
  readonly time: string;
  readonly datacontenttype: 'application/json';
  /** CloudEvents sequence extension: the outbox position, as a decimal string. */
  readonly sequence: string;
  /** Extension attribute: {@link EVENT_SCHEMA_VERSION}. */
  readonly schemaversion: number;
  readonly data: { readonly subjectId: string | null; readonly purposes: readonly string[] } & Readonly<Record<string, unknown>>;
}

/**
 * The port through which modules emit events, inside the transaction of the change itself (the transactional
 * outbox): an event is stored if and only if its change commits. Implemented by the events module.
 */
export interface EventSink {
  /** Appends events to the outbox within `trx` (a store transaction). */
  emit(trx: unknown, events: readonly EventInput[]): Promise<void>;
  /** Tells local dispatchers, after the caller's transaction committed, that new events may be waiting. */
  committed(): void;
}
