/** The privacy center's JSON API (`/v1/privacy/…`), as the page uses it. */

export interface Config {
  name: string;
  logoUrl: string | null;
  colors: { primary: string; primaryText: string; background: string; text: string; focus: string };
  languages: Array<'en' | 'de'>;
  defaultLanguage: 'en' | 'de';
  jurisdiction: string;
  jurisdictions: string[];
  requestTypes: string[];
  privacyPolicyUrl: string | null;
  available: Record<string, string[]>;
}

export interface Session {
  email: string;
  csrfToken: string;
  expiresAt: string;
}

export interface PurposeView {
  key: string;
  title: string;
  description: string;
  legalBasis: string;
  legalBasisArticle: string;
  changeable: boolean;
  status: string;
  decidedAt: string | null;
  method: string | null;
  gpcOptOut: boolean;
}

export interface ConsentView {
  jurisdiction: string;
  language: 'en' | 'de';
  purposes: PurposeView[];
  /** `applied`: opted out by the signal on this call; `optedOut`: purposes whose decision is the signal's opt-out. */
  gpc: { signal: boolean; honoured: boolean; applied: string[]; optedOut: string[] };
}

/** A field the person may ask to have corrected; its current value is never sent. */
export interface RectifiableField {
  field: string;
  category: string;
  categoryLabel: string;
  description: string | null;
  system: string;
}

export interface RequestView {
  id: string;
  type: string;
  status: string;
  jurisdiction: string;
  receivedAt: string;
  dueAt: string;
  completedAt: string | null;
  overdue: boolean;
}

/** An error answer of the API: its stable code and details. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly details: unknown,
  ) {
    super(code);
  }
}

let csrfToken = '';

/** Remembers the session's CSRF token, sent as X-CSRF-Token on every change. */
export function setCsrf(token: string): void {
  csrfToken = token;
}

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && csrfToken !== '') headers['x-csrf-token'] = csrfToken;
  const res = await fetch(path, { method, headers, credentials: 'same-origin', body: body === undefined ? null : JSON.stringify(body) });
  if (res.status === 204) return undefined as T;
  const json = (await res.json().catch(() => ({}))) as { error?: { code?: string; details?: unknown } };
  if (!res.ok) throw new ApiError(res.status, json.error?.code ?? 'CST_ERR_INTERNAL', json.error?.details);
  return json as T;
}

export const api = {
  config: () => call<Config>('GET', '/v1/privacy/config'),
  /** The current session; undefined when not signed in. */
  session: () => call<Session | undefined>('GET', '/v1/privacy/session'),
  signIn: (email: string, language: string) => call<{ challengeId: string }>('POST', '/v1/privacy/sign-in', { email, language }),
  verify: (challengeId: string, code: string) => call<Session>('POST', '/v1/privacy/sign-in/verify', { challengeId, code }),
  signOut: () => call<void>('POST', '/v1/privacy/sign-out'),
  consent: (language: string) => call<ConsentView>('GET', `/v1/privacy/consent?language=${encodeURIComponent(language)}`),
  decide: (purpose: string, decision: 'granted' | 'withdrawn', language: string) =>
    call<ConsentView>('PUT', `/v1/privacy/consent/${encodeURIComponent(purpose)}?language=${encodeURIComponent(language)}`, { decision }),
  rectifiableFields: () => call<{ fields: RectifiableField[] }>('GET', '/v1/privacy/rectifiable-fields'),
  requests: () => call<{ requests: RequestView[] }>('GET', '/v1/privacy/requests'),
  createRequest: (body: { type: string; jurisdiction: string; corrections?: Record<string, string> }) => call<RequestView>('POST', '/v1/privacy/requests', body),
  packageLink: (id: string) => call<{ url: string; expiresAt: string }>('POST', `/v1/privacy/requests/${encodeURIComponent(id)}/package-link`),
};
