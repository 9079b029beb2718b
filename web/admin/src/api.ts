/** The Custodian HTTP API (`/v1/…`) as the console uses it: every call carries `Authorization: Bearer <key>`. */

const KEY = 'custodian.admin.apiKey';

/** An error answer of the API: its HTTP status and stable code (never shown with personal data). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
  ) {
    super(code);
  }
}

/** The API key of this tab: sessionStorage only (gone when the tab closes), never localStorage or a cookie. */
export const session = {
  key: (): string | null => sessionStorage.getItem(KEY),
  set: (key: string): void => sessionStorage.setItem(KEY, key),
  clear: (): void => sessionStorage.removeItem(KEY),
};

function headers(extra: Record<string, string> = {}, key = session.key()): Record<string, string> {
  // No key: an SSO proxy in front of Custodian may inject Authorization itself (docs/admin-console.md).
  return key === null ? extra : { ...extra, authorization: `Bearer ${key}` };
}

async function raw(method: string, path: string, body?: unknown, key?: string | null): Promise<Response> {
  const h = headers(body === undefined ? { accept: 'application/json' } : { accept: 'application/json', 'content-type': 'application/json' }, key === undefined ? session.key() : key);
  const res = await fetch(path, { method, headers: h, credentials: 'omit', cache: 'no-store', body: body === undefined ? null : JSON.stringify(body) });
  if (!res.ok) {
    const json = (await res.json().catch(() => ({}))) as { error?: { code?: string } };
    throw new ApiError(res.status, json.error?.code ?? `HTTP_${res.status}`);
  }
  return res;
}

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await raw(method, path, body);
  return (res.status === 204 ? undefined : await res.json()) as T;
}

const qs = (params: Record<string, string | number | undefined>) => {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') p.set(k, String(v));
  const s = p.toString();
  return s === '' ? '' : `?${s}`;
};

export interface Me {
  id: string;
  name: string;
  scopes: string[];
}
export interface RequestView {
  id: string;
  type: string;
  status: string;
  jurisdiction: string;
  regime: string;
  channel: string;
  identityKinds: string[];
  receivedAt: string;
  dueAt: string;
  acknowledgeBy: string | null;
  extended: boolean;
  verifiedAt: string | null;
  completedAt: string | null;
  overdue: boolean;
  outcome: Record<string, unknown> | null;
  history?: Array<{ at: string; from: string | null; to: string; actor: string; reason: string | null }>;
}
export interface Task {
  seq: number;
  phase: string;
  target: string;
  status: string;
  attempts: number;
  error: string | null;
  updatedAt: string;
}
export interface RequestFilter {
  type?: string;
  status?: string;
  jurisdiction?: string;
  overdue?: string;
}
export interface ConsentRates {
  from: string;
  to: string;
  bucket: 'day' | 'month';
  buckets: string[];
  purposes: Array<{ purpose: string; series: Array<{ bucket: string; granted: number; denied: number; withdrawn: number; total: number; grantRate: number; withdrawRate: number }> }>;
}
export interface ConsentEvent {
  id: string;
  purpose: string;
  decision: string;
  method: string;
  recordedAt: string;
  jurisdiction?: string | null;
  noticeVersion?: string | null;
}
export interface AuditEntry {
  id: string;
  seq: number | null;
  time: string;
  actor: string;
  action: string;
  targetType: string;
  targetRef: string | null;
  outcome: string;
}
export interface VerifyReport {
  ok: boolean;
  tree: string;
  size?: number;
  rootHash?: string;
  headsChecked?: number;
  position?: number | null;
  problem?: string;
}
export interface GraphNode {
  id: string;
  kind: string;
  label: string;
  country?: string;
}
export interface GraphEdge {
  from: string;
  to: string;
  kind: string;
  label?: string;
}
export interface DpiaReport {
  citation: string;
  screenings: Array<{ purpose: string; title: string; metCount: number; conclusion: string; conclusionText: string; criteria: Array<{ key: string; title: string; met: boolean }> }>;
}
export interface Incident {
  id: string;
  status: string;
  title: string;
  detectedAt: string;
  affectedCount: number | null;
  assessment: { outcome: string; computed: { severity: number; score: number } };
  deadlines: Array<{ audience: string; stage: string; dueAt: string | null; met: boolean; overdue: boolean; citation: string; regime: string }>;
}

/** The fields of POST /v1/incidents that the console's form sets (the API takes more: docs/breach.md). */
export interface NewIncident {
  title: string;
  description?: string;
  detectedAt?: string;
  collections?: string[];
  affectedCount?: number;
  encrypted?: boolean;
  jurisdictions?: string[];
}

const enc = encodeURIComponent;

export const api = {
  /** Who the key is; `key` checks a key before it is kept. */
  me: async (key?: string | null): Promise<Me> => (await (await raw('GET', '/v1/me', undefined, key)).json()) as Me,
  requests: (f: RequestFilter) => call<{ requests: RequestView[] }>('GET', `/v1/requests${qs({ ...f, limit: 500 })}`),
  request: (id: string) => call<RequestView>('GET', `/v1/requests/${enc(id)}`),
  tasks: (id: string) => call<{ tasks: Task[] }>('GET', `/v1/requests/${enc(id)}/tasks`),
  decide: (id: string, action: 'approve' | 'reject' | 'extend', reason: string) =>
    call<RequestView>('POST', `/v1/requests/${enc(id)}/${action}`, reason === '' ? {} : { reason }),
  consentRates: (from: string, to: string, bucket: 'day' | 'month') => call<ConsentRates>('GET', `/v1/reports/consent-rates${qs({ from, to, bucket })}`),
  consentHistory: (subjectId: string) => call<{ events: ConsentEvent[] }>('GET', `/v1/subjects/${enc(subjectId)}/consent/history${qs({ limit: 200 })}`),
  audit: (f: { action?: string; from?: string; to?: string; subjectId?: string; cursor?: string }) => call<{ entries: AuditEntry[]; nextCursor: string | null }>('GET', `/v1/audit${qs({ ...f, limit: 50 })}`),
  verify: (tree: 'audit' | 'consent') => call<VerifyReport>('POST', `/v1/audit/verify${qs({ tree })}`, {}),
  /** The current data map: only what the incident form offers (systems, datasets, collections). */
  datamap: () => call<{ manifest: { systems: Array<{ key: string; name: string; datasets?: Array<{ key: string; collections: Array<{ name: string }> }> }> } }>('GET', '/v1/datamap'),
  graph: () => call<{ nodes: GraphNode[]; edges: GraphEdge[] }>('GET', '/v1/datamap/graph'),
  dpia: () => call<DpiaReport>('GET', '/v1/reports/dpia'),
  ropa: () => call<Record<string, unknown>>('GET', '/v1/reports/ropa'),
  incidents: () => call<{ incidents: Incident[] }>('GET', '/v1/incidents?limit=200'),
  /** Records a breach; the server assesses it and computes its deadlines (needs `incidents:write`). */
  createIncident: (body: NewIncident) => call<Incident>('POST', '/v1/incidents', body),
  /** A binary or text answer as a Blob (downloads, the data-flow SVG). */
  blob: async (path: string, method = 'GET'): Promise<Blob> => (await raw(method, path)).blob(),
};

/** Saves a Blob under `name` through a temporary object URL (no server round trip without the key). */
export function saveBlob(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
