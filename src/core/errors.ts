/**
 * Every error Custodian raises on purpose carries a stable code from {@link ERROR_CODES}.
 * Domain code knows nothing of HTTP: the server maps `status` when it renders the error.
 * Messages and details never contain personal data, only ids and field paths.
 */
export const ERROR_CODES = {
  CST_ERR_VALIDATION: { status: 400, description: 'The input does not match the schema; `details.issues` lists each problem with its path.' },
  CST_ERR_BAD_JSON: { status: 400, description: 'The request body is not valid JSON.' },
  CST_ERR_UNSUPPORTED_MEDIA_TYPE: { status: 415, description: 'Only application/json bodies are accepted.' },
  CST_ERR_PAYLOAD_TOO_LARGE: { status: 413, description: 'The request body exceeds the size limit.' },
  CST_ERR_BAD_REQUEST: { status: 400, description: 'The request is malformed in a way not covered by a more specific code.' },
  CST_ERR_AUTH_MISSING: { status: 401, description: 'No `Authorization: Bearer <api key>` header was sent.' },
  CST_ERR_AUTH_INVALID: { status: 401, description: 'The API key is unknown or revoked.' },
  CST_ERR_AUTH_FORBIDDEN: { status: 403, description: 'The API key lacks the scope this operation needs; `details.required` names it.' },
  CST_ERR_AUTH_UNKNOWN_PURPOSE: { status: 400, description: 'An API key was declared for purposes that are not configured; `details.purposes` lists them.' },
  CST_ERR_NOT_FOUND: { status: 404, description: 'No such route or resource.' },
  CST_ERR_CONSENT_UNKNOWN_PURPOSE: { status: 400, description: 'The purpose key is not configured; `details.purpose` names it.' },
  CST_ERR_CONSENT_PURPOSE_NOT_OFFERED: { status: 400, description: 'The purpose is not offered in the given jurisdiction.' },
  CST_ERR_CONSENT_BAD_EXPIRY: { status: 400, description: 'The expiry is not after the recorded time.' },
  CST_ERR_CONSENT_BAD_TCF: { status: 400, description: 'The TCF string in the evidence is malformed or not a TCF v2 string.' },
  CST_ERR_CONSENT_IDEMPOTENCY_CONFLICT: { status: 409, description: 'The idempotency key was already used for a different event.' },
  CST_ERR_CONSENT_DUPLICATE_IDEMPOTENCY_KEY: { status: 400, description: 'The same idempotency key appears twice in one batch.' },
  CST_ERR_PURPOSE_INVALID: { status: 400, description: 'The purpose definition is inconsistent (e.g. consent required under a non-consent legal basis).' },
  CST_ERR_CRYPTO_SHREDDED: { status: 410, description: "The subject's keys were destroyed (crypto-shredding): the value can never be decrypted again." },
  CST_ERR_CRYPTO_TAMPERED: { status: 400, description: 'The ciphertext failed authentication: it was altered after encryption.' },
  CST_ERR_CRYPTO_WRONG_CONTEXT: { status: 400, description: 'The ciphertext was made for another context (table, column or row); it cannot be moved.' },
  CST_ERR_CRYPTO_MALFORMED: { status: 400, description: 'The input is not a Custodian ciphertext (wrong prefix, not base64url, truncated).' },
  CST_ERR_CRYPTO_UNSUPPORTED_VERSION: { status: 400, description: 'The ciphertext uses a format version this Custodian does not know.' },
  CST_ERR_CRYPTO_UNKNOWN_KEY: { status: 400, description: 'The ciphertext names a key id this store never had (another installation, or a forged value).' },
  CST_ERR_CRYPTO_BAD_CONTEXT: { status: 400, description: 'The context is missing, too long or not well-formed text.' },
  CST_ERR_CRYPTO_UNKNOWN_INDEX: { status: 400, description: 'No blind index with this name is defined.' },
  CST_ERR_CRYPTO_MASTER_KEY_MISSING: { status: 500, description: 'A master key version that data keys depend on is not configured.' },
  CST_ERR_CRYPTO_WRONG_MASTER_KEY: { status: 500, description: 'The configured master key is not the one the store was created with (key check value mismatch).' },
  CST_ERR_CRYPTO_KMS_UNAVAILABLE: { status: 503, description: 'The external KMS did not answer or refused; retry later.' },
  CST_ERR_CRYPTO_RETIRE_REFUSED: { status: 409, description: 'A master key version cannot be retired while it is primary or data keys still depend on it.' },
  CST_ERR_STORE_URL: { status: 400, description: 'The store URL is not a supported `sqlite:` or `postgres://` URL.' },
  CST_ERR_CONFIG: { status: 400, description: 'The configuration is invalid; `details` names the setting.' },
  CST_ERR_STORE_MIGRATION: { status: 500, description: 'Applying a store migration failed; the store is unchanged by the failed step.' },
  CST_ERR_DATAMAP_INVALID: { status: 400, description: 'The data map manifest is invalid; `details.issues` lists every problem with its path (and file, line, column when read from YAML).' },
  CST_ERR_DATAMAP_NOT_FOUND: { status: 404, description: 'No data map has been stored yet, or no such version.' },
  CST_ERR_DATAMAP_CONFLICT: { status: 409, description: 'The data map changed since the version the update was based on (`baseVersion`).' },
  CST_ERR_REQUEST_NOT_FOUND: { status: 404, description: 'No such data subject request.' },
  CST_ERR_REQUEST_RIGHT_NOT_AVAILABLE: { status: 400, description: 'The jurisdiction grants no such right, or no regime is known for it.' },
  CST_ERR_REQUEST_BAD_IDENTITY: { status: 400, description: 'An identity is of an unknown type or malformed; `details.issues` names it (never its value).' },
  CST_ERR_REQUEST_INVALID_TRANSITION: { status: 409, description: 'The request is in a state that does not allow this step (e.g. approving a completed request, a second extension).' },
  CST_ERR_REQUEST_VERIFICATION_FAILED: { status: 400, description: 'The verification code is wrong; `details.attemptsLeft` says how many tries remain.' },
  CST_ERR_REQUEST_VERIFICATION_EXPIRED: { status: 400, description: 'The verification code has expired.' },
  CST_ERR_REQUEST_VERIFICATION_LOCKED: { status: 400, description: 'Too many wrong codes: the request was rejected and a new one must be made.' },
  CST_ERR_REQUEST_LINK_INVALID: { status: 404, description: 'The package download link is invalid or has expired.' },
  CST_ERR_UNAVAILABLE: { status: 503, description: 'A dependency (the store) is not reachable; retry later.' },
  CST_ERR_SCAN_URL: { status: 400, description: 'The connection URL to scan is malformed or names no database; `details.url` is the URL with its password hidden.' },
  CST_ERR_SCAN_UNSUPPORTED: { status: 400, description: 'The connection URL scheme cannot be scanned; `details.scheme` names it (postgres://, mysql://, mariadb:// and sqlite: can).' },
  CST_ERR_SCAN_CONNECTION: { status: 503, description: 'The database to scan could not be opened or queried (unreachable, refused, wrong credentials, missing file); `details.reason` says why.' },
  CST_ERR_CONNECTOR_UNSUPPORTED: { status: 400, description: 'No data connector handles this connection URL scheme; `details.scheme` names it.' },
  CST_ERR_CONNECTOR_SCHEMA: { status: 400, description: 'The data map names a collection or field the connected system does not have; `details` names the collection and field.' },
  CST_ERR_CONNECTOR_PERMISSION: { status: 502, description: "The connected system refused Custodian's credentials or privileges for this operation (an upstream fault, not the API caller's)." },
  CST_ERR_CONNECTOR_UNAVAILABLE: { status: 503, description: 'The connected system is not reachable or timed out; retry later.' },
  CST_ERR_CONNECTOR_FAILED: { status: 502, description: 'The connected system failed the operation for another reason; `details.reason` is its error code.' },
  CST_ERR_EVENT_SUBSCRIPTION_NOT_FOUND: { status: 404, description: 'No such event subscription (or it was deleted); `details.id` names it.' },
  CST_ERR_CLIENT_BAD_RESPONSE: { status: 502, description: 'A Custodian server answered with something that is not a Custodian answer (not JSON, an unknown error code, results that do not match the request); `details.status` is its HTTP status.' },
  CST_ERR_INCIDENT_NOT_FOUND: { status: 404, description: 'No such incident; `details.id` names it.' },
  CST_ERR_INCIDENT_INVALID: { status: 400, description: 'The incident is inconsistent: awareness before occurrence, a time in the future, a negative count, an unknown system, collection or data category; `details.issues` lists each problem with its path.' },
  CST_ERR_INCIDENT_INVALID_TRANSITION: { status: 409, description: 'The incident is in a status that does not allow this step (e.g. notifying about a dismissed incident, reopening a closed one).' },
  CST_ERR_INCIDENT_NO_RECIPIENTS: { status: 400, description: 'A notification has nobody to go to: no authority address given, or scoping found no e-mail addresses of affected people.' },
  CST_ERR_AUTH_RATE_LIMITED: { status: 429, description: 'Too many failed authentications from this address: wait `details.retryAfterSeconds` seconds (also in the Retry-After header).' },
  CST_ERR_BANNER_ORIGIN_FORBIDDEN: { status: 403, description: 'The public banner API was called from a web origin that is not in `banner.allowedOrigins`; `details.origin` names it.' },
  CST_ERR_BANNER_RATE_LIMITED: { status: 429, description: 'Too many banner requests from this address: wait `details.retryAfterSeconds` seconds (also in the Retry-After header).' },
  CST_ERR_PRIVACY_CODE_INVALID: { status: 400, description: 'The privacy center sign-in code is not right; `details.attemptsLeft` says how many tries remain.' },
  CST_ERR_PRIVACY_CODE_EXPIRED: { status: 400, description: 'The privacy center sign-in code has expired, was used up by too many wrong tries, or is unknown: ask for a new code.' },
  CST_ERR_PRIVACY_SESSION_REQUIRED: { status: 401, description: 'No valid privacy center session: sign in again with your e-mail address.' },
  CST_ERR_PRIVACY_CSRF: { status: 403, description: 'A privacy center change came without the session’s CSRF token or from another web origin.' },
  CST_ERR_RETENTION_BUSY: { status: 409, description: 'Another retention run holds the lease (one run at a time across processes); `details.runId` names it when known. Try again when it has finished.' },
  CST_ERR_RETENTION_RUN_NOT_FOUND: { status: 404, description: 'No such retention run; `details.id` names it.' },
  CST_ERR_LEGAL_HOLD_NOT_FOUND: { status: 404, description: 'No such legal hold, or it was already released; `details.id` names it.' },
  CST_ERR_LEGAL_HOLD_INVALID: { status: 400, description: 'The legal hold is inconsistent: a subject hold without an identity, a system or collection the data map does not have, an end in the past; `details.issues` lists each problem with its path.' },
  CST_ERR_INTERNAL: { status: 500, description: 'An unexpected fault; the body says nothing of internals, the log has the request id.' },
} as const satisfies Record<string, { status: number; description: string }>;

/** A stable, documented error code. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** Options of {@link CustodianError}. */
export interface CustodianErrorOptions {
  readonly details?: unknown;
  readonly cause?: unknown;
}

/** The one error root of Custodian. */
export class CustodianError extends Error {
  readonly code: ErrorCode;
  readonly details: unknown;

  constructor(code: ErrorCode, message: string, options: CustodianErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CustodianError';
    this.code = code;
    this.details = options.details;
  }

  /** The HTTP status the code maps to (used only by interfaces). */
  get status(): number {
    return ERROR_CODES[this.code].status;
  }
}

/** True when `err` is a {@link CustodianError}, optionally of one code. */
export function isCustodianError(err: unknown, code?: ErrorCode): err is CustodianError {
  return err instanceof CustodianError && (code === undefined || err.code === code);
}
