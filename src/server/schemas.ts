import { z } from 'zod';
import { JURISDICTION_CODE_PATTERN, LEGAL_BASIS_KEYS, PURPOSE_KEY_PATTERN, isIsoInstant, isStorableText } from '../core/index.js';
import { MAX_KEY_PURPOSES, SCOPES } from '../auth/index.js';
import { CHECK_STATUSES, COLLECTION_METHODS, CONSENT_STATUSES, DECISIONS, INPUT_METHODS, LEDGER_LIMITS, SNAPSHOT_MAX_PAGE, purposeDefinitionSchema } from '../ledger/index.js';

// Schemas of the HTTP API. They validate requests, serialise responses (undeclared fields never leave),
// and generate /openapi.json: one definition for all three.

export const instant = z.iso
  .datetime({ offset: true })
  .refine(isIsoInstant, 'must be a real calendar instant')
  .describe('UTC ISO-8601 instant, e.g. 2026-11-22T10:00:00.000Z');
/** An array in a response: readonly, like the domain records it renders. */
const list = <T extends z.ZodType>(item: T) => z.array(item).readonly();

const instantOut = z.string().describe('UTC ISO-8601 instant with milliseconds');

const storedText = () => z.string().refine(isStorableText, 'must be well-formed Unicode without NUL characters');

export const subjectId = storedText()
  .min(1)
  .max(LEDGER_LIMITS.maxSubjectIdLength)
  .describe("The application's opaque user id. Never an e-mail address or other personal data.");
export const purposeKey = z.string().min(1).max(128).regex(PURPOSE_KEY_PATTERN).describe('Purpose key, e.g. marketing.advertising');
const jurisdiction = z.string().max(16).regex(JURISDICTION_CODE_PATTERN).describe('Jurisdiction code: EU, UK, US-CA, BR, …');
const legalBasis = z.enum(LEGAL_BASIS_KEYS);

export const evidenceInput = z
  .object({
    ip: z.union([z.ipv4(), z.ipv6()]).optional().describe('Stored truncated to /24 (IPv4) or /48 (IPv6).'),
    userAgent: z.string().max(LEDGER_LIMITS.maxUserAgentLength).optional(),
    pageUrl: z.url({ protocol: /^https?$/ }).max(LEDGER_LIMITS.maxPageUrlLength).optional().describe('Stored without query string and fragment.'),
    tcString: z.string().min(1).max(LEDGER_LIMITS.maxTcStringLength).optional().describe('IAB TCF v2.x TC string; decoded and validated.'),
    gpc: z.boolean().optional().describe('A Global Privacy Control signal was present when the choice was made.'),
  })
  .strict();

export const consentEventInput = z
  .object({
    subjectId,
    purpose: purposeKey,
    decision: z.enum(DECISIONS),
    jurisdiction: jurisdiction.nullish(),
    noticeVersion: storedText().min(1).max(LEDGER_LIMITS.maxNoticeVersionLength).nullish().describe('Version of the notice or policy shown.'),
    method: z.enum(INPUT_METHODS).optional().describe('How the decision was collected (default api). `gpc` is reserved to Custodian.'),
    clientTime: instant.nullish().describe('When the client says the choice was made; kept, not used for ordering.'),
    expiresAt: instant.nullish().describe('Default for grants: the purpose’s defaultExpiryMonths after recording.'),
    evidence: evidenceInput.nullish(),
    idempotencyKey: storedText().min(1).max(LEDGER_LIMITS.maxIdempotencyKeyLength).nullish().describe('The same key twice records once.'),
  })
  .strict();

export const gpcHeaders = z.looseObject({ 'sec-gpc': z.string().max(8).optional().describe('1 = Global Privacy Control signal') });

/**
 * Headers of the routes that hand personal data to the caller: `Custodian-Purpose` states the purpose of the
 * read, recorded in its audit entry (docs/api.md#purpose-of-access). A malformed key is a 400; an unknown but
 * well-formed one is recorded as given.
 */
export const purposeHeaders = z.looseObject({
  'custodian-purpose': z
    .string()
    .min(1)
    .max(128)
    .regex(PURPOSE_KEY_PATTERN)
    .optional()
    .describe('The purpose this read of personal data serves, a purpose key such as essential.service (one per request). Recorded in the audit entry of the read; an API key declared for purposes is judged against them by the purpose_mismatch detection rule. Never personal data.'),
});

export const recordBody = z
  .object({
    events: z.array(consentEventInput).min(1).max(LEDGER_LIMITS.maxBatch),
    gpc: z.boolean().optional().describe('Same as the Sec-GPC: 1 header.'),
  })
  .strict();

const tcfSummary = z.object({
  version: z.number(),
  policyVersion: z.number(),
  cmpId: z.number(),
  cmpVersion: z.number(),
  vendorListVersion: z.number(),
  created: instantOut.nullable(),
  lastUpdated: instantOut.nullable(),
  purposeConsents: list(z.number()),
  purposeLegitimateInterests: list(z.number()),
  vendorConsentCount: z.number(),
});

export const consentEvent = z.object({
  id: z.string(),
  subjectId: z.string(),
  purpose: z.string(),
  decision: z.enum(DECISIONS),
  legalBasis,
  jurisdiction: z.string().nullable(),
  noticeVersion: z.string().nullable(),
  method: z.enum(COLLECTION_METHODS),
  recordedAt: instantOut,
  clientTime: instantOut.nullable(),
  expiresAt: instantOut.nullable(),
  gpc: z.boolean(),
  evidence: z
    .object({
      ip: z.string().optional(),
      userAgent: z.string().optional(),
      pageUrl: z.string().optional(),
      tcString: z.string().optional(),
      tcf: tcfSummary.optional(),
      gpc: z.boolean().optional(),
      shredded: z.boolean().optional().describe('The subject was crypto-shredded: the event stays, its evidence is unreadable.'),
    })
    .nullable(),
  idempotencyKey: z.string().nullable(),
  batchId: z.string(),
  actor: z.string(),
});

export const recordResponse = z.object({
  batchId: z.string(),
  events: list(consentEvent.extend({ replayed: z.boolean() })),
});

export const purposeState = z.object({
  purpose: z.string(),
  status: z.enum(CONSENT_STATUSES),
  eventId: z.string().nullable(),
  decidedAt: instantOut.nullable(),
  expiresAt: instantOut.nullable(),
  method: z.enum(COLLECTION_METHODS).nullable(),
  jurisdiction: z.string().nullable(),
});

export const stateResponse = z.object({ subjectId: z.string(), purposes: list(purposeState) });

export const historyQuery = z
  .object({
    purpose: purposeKey.optional(),
    asOf: instant.optional().describe('Events recorded at or before this instant, and the state as of it.'),
    limit: z.coerce.number().int().min(1).max(LEDGER_LIMITS.maxHistoryPage).optional(),
    after: z.uuid().optional().describe('Cursor: nextCursor of the previous page.'),
  })
  .strict();

export const historyResponse = z.object({
  subjectId: z.string(),
  asOf: instantOut,
  events: list(consentEvent),
  state: list(purposeState),
  nextCursor: z.string().nullable(),
});

export const checkQuery = z.object({ subjectId, purpose: purposeKey }).strict();

export const checkResult = z.object({
  subjectId: z.string(),
  purpose: z.string(),
  allowed: z.boolean(),
  status: z.enum(CHECK_STATUSES).describe('The consent status, or `restricted` when processing of the subject is restricted (GDPR Art. 18) and the purpose is not based on a legal obligation'),
  legalBasis,
  reason: z.string(),
  eventId: z.string().nullable(),
});

export const checkBatchBody = z.object({ checks: z.array(checkQuery).min(1).max(LEDGER_LIMITS.maxCheckBatch) }).strict();
export const checkBatchResponse = z.object({ results: list(checkResult) });

export const snapshotQuery = z
  .object({
    purpose: purposeKey.optional().describe('Only this purpose.'),
    after: z.string().min(1).max(2048).optional().describe('Cursor: `next` of the previous page.'),
    limit: z.coerce.number().int().min(1).max(SNAPSHOT_MAX_PAGE).optional().describe('Rows per page (default 1,000).'),
  })
  .strict();

export const snapshotResponse = z.object({
  states: list(
    z.object({
      subjectId: z.string(),
      purpose: z.string(),
      decision: z.enum(DECISIONS),
      eventId: z.string().describe('The deciding consent event (UUIDv7, time-ordered): apply a bus event only when its consentEventId is greater.'),
      expiresAt: instantOut.nullable(),
    }),
  ),
  restrictions: list(z.object({ subjectId: z.string(), eventId: z.string() })).describe(
    'First page only (empty on later pages): every subject whose processing is restricted now (GDPR Art. 18), with its restriction event.',
  ),
  restrictionsComplete: z.boolean().describe('False when there were more than 100,000 restricted subjects and the list was cut.'),
  next: z.string().nullable().describe('Cursor of the next page; null on the last page.'),
  sequence: z.string().describe('Event outbox position read before the first page: every event up to it is reflected in every page.'),
});

export const purpose = z.object({
  key: z.string(),
  title: z.string(),
  description: z.string(),
  legalBasis,
  consentRequired: z.boolean(),
  defaultExpiryMonths: z.number().int().nullable(),
  jurisdictions: list(z.string()),
  gpcOptOut: z.boolean(),
});
export const purposeList = z.object({ purposes: list(purpose) });
export const purposeKeyParams = z.object({ key: purposeKey }).strict();
export const purposeBody = purposeDefinitionSchema;

export const subjectParams = z.object({ subjectId }).strict();

const declaredPurposes = list(z.string()).describe('The purposes of use the key is declared for; empty: none declared (its reads are not judged against purposes).');
export const apiKeyCreateBody = z
  .object({
    name: storedText().min(1).max(200),
    scopes: z.array(z.enum(SCOPES)).min(1),
    purposes: z
      .array(purposeKey)
      .max(MAX_KEY_PURPOSES)
      .optional()
      .describe('The purposes of use the key is declared for: keys of configured purposes (GET /v1/purposes; the data map’s purposes are among them). The purpose_mismatch detection rule judges the key’s personal-data reads against them.'),
  })
  .strict();
export const apiKey = z.object({ id: z.string(), name: z.string(), scopes: list(z.enum(SCOPES)), purposes: declaredPurposes, createdAt: instantOut, revokedAt: instantOut.nullable() });
export const apiKeyCreated = z.object({
  id: z.string(),
  name: z.string(),
  scopes: list(z.enum(SCOPES)),
  purposes: declaredPurposes,
  createdAt: instantOut,
  secret: z.string().describe('Shown once; only its SHA-256 digest is stored.'),
});
export const apiKeyList = z.object({ apiKeys: list(apiKey) });
export const apiKeyParams = z.object({ id: z.uuid() }).strict();

export const errorBody = z.object({
  error: z.object({ code: z.string(), message: z.string(), details: z.unknown().optional() }),
});

export const health = z.object({ status: z.enum(['ok', 'unavailable']), store: z.string(), version: z.string() });

/** Standard error responses, merged into each route's response schemas. */
export const errorResponses = {
  400: errorBody.describe('Bad input'),
  401: errorBody.describe('Missing or invalid API key'),
  403: errorBody.describe('The key lacks the scope'),
} as const;
