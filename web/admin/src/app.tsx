import { createContext, type ComponentChildren } from 'preact';
import { useContext, useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, api, saveBlob, session, type AuditEntry, type ConsentEvent, type ConsentRates, type DpiaReport, type GraphEdge, type GraphNode, type Incident, type Me, type RequestFilter, type RequestView } from './api.ts';
import { LANGUAGES, preferredLanguage, translator, type Language, type StringKey } from './i18n.ts';

type T = ReturnType<typeof translator>;
interface Ui {
  t: T;
  lang: Language;
  /** Announces a message in the polite live region (screen readers). */
  announce: (message: string) => void;
  go: (path: string) => void;
}
const UiContext = createContext<Ui>(null as unknown as Ui);
const useUi = () => useContext(UiContext);

/** Sections of the console and the scope that opens each (roles are scopes; `admin` opens all). */
export const SECTIONS = [
  { key: 'requests', scope: 'requests:read', label: 'nav.requests' },
  { key: 'consent', scope: 'consent:read', label: 'nav.consent' },
  { key: 'audit', scope: 'audit:read', label: 'nav.audit' },
  { key: 'datamap', scope: 'datamap:read', label: 'nav.datamap' },
  { key: 'incidents', scope: 'incidents:read', label: 'nav.incidents' },
] as const satisfies ReadonlyArray<{ key: string; scope: string; label: StringKey }>;

const REQUEST_TYPES = ['access', 'portability', 'erasure', 'rectification', 'restriction', 'objection', 'opt_out'];
const REQUEST_STATUSES = ['received', 'awaiting_verification', 'verified', 'awaiting_approval', 'in_progress', 'paused', 'awaiting_input', 'completed', 'partially_completed', 'rejected', 'failed'];

const may = (me: Me, scope: string) => me.scopes.includes('admin') || me.scopes.includes(scope);
const pathNow = () => location.pathname.replace(/^\/admin\/?/, '').replace(/\/+$/, '');

/** A message for an API failure: its stable code, never a server-side text that could hold personal data. */
function failure(t: T, err: unknown): string {
  if (err instanceof ApiError) return err.status === 403 ? t('forbidden') : `${t('error')}: ${err.code}`;
  return t('error');
}

/** "3 d 4 h", "5 h 10 min", "12 min" */
function span(ms: number): string {
  const m = Math.floor(Math.abs(ms) / 60_000);
  const d = Math.floor(m / 1440);
  const h = Math.floor((m % 1440) / 60);
  if (d > 0) return `${d} d ${h} h`;
  if (h > 0) return `${h} h ${m % 60} min`;
  return `${m % 60} min`;
}
const fmt = (iso: string | null | undefined, lang: Language) => (iso ? new Date(iso).toLocaleString(lang === 'de' ? 'de-DE' : 'en-GB', { timeZone: 'UTC', dateStyle: 'medium', timeStyle: 'short' }) + ' UTC' : '—');

/** The whole console: sign-in, then the sections the key's scopes allow. */
export function App() {
  const [lang, setLang] = useState<Language>(preferredLanguage());
  const [me, setMe] = useState<Me | null | undefined>(undefined);
  const [sso, setSso] = useState(false);
  const [path, setPath] = useState(pathNow());
  const [message, setMessage] = useState('');
  const t = translator(lang);

  useEffect(() => {
    document.documentElement.lang = lang;
    document.title = t('title');
  }, [lang]);
  useEffect(() => {
    const onPop = () => setPath(pathNow());
    addEventListener('popstate', onPop);
    // A kept key, or an SSO proxy that injects Authorization itself: either way /v1/me answers.
    const key = session.key();
    api
      .me(key)
      .then((m) => {
        setSso(key === null);
        setMe(m);
      })
      .catch(() => {
        session.clear();
        setMe(null);
      });
    return () => removeEventListener('popstate', onPop);
  }, []);

  const ui: Ui = {
    t,
    lang,
    announce: (m) => {
      setMessage('');
      setTimeout(() => setMessage(m), 50);
    },
    go: (p) => {
      history.pushState(null, '', `/admin/${p}`);
      setPath(p);
    },
  };
  const allowed = me ? SECTIONS.filter((s) => may(me, s.scope)) : [];
  const current = allowed.find((s) => path === s.key || path.startsWith(`${s.key}/`)) ?? allowed[0];

  return (
    <UiContext.Provider value={ui}>
      <a class="skip" href="#main">
        {t('skip')}
      </a>
      <header class="top">
        <p class="brand">{t('title')}</p>
        <label class="lang">
          {t('language')}{' '}
          <select value={lang} onChange={(e) => setLang((e.currentTarget).value as Language)}>
            {LANGUAGES.map((l) => (
              <option value={l} key={l}>
                {l === 'en' ? 'English' : 'Deutsch'}
              </option>
            ))}
          </select>
        </label>
        {me ? (
          <div class="who">
            <span>
              {t('login.signedInAs')} <strong>{me.name}</strong> ({me.scopes.join(', ')})
            </span>
            {sso ? (
              <span>{t('login.sso')}</span>
            ) : (
              <button
                type="button"
                onClick={() => {
                  session.clear();
                  setMe(null);
                }}
              >
                {t('login.signOut')}
              </button>
            )}
          </div>
        ) : null}
      </header>
      {me ? (
        <nav aria-label={t('nav.label')}>
          <ul>
            {allowed.map((s) => (
              <li key={s.key}>
                <a
                  href={`/admin/${s.key}`}
                  aria-current={current?.key === s.key ? 'page' : undefined}
                  data-section={s.key}
                  onClick={(e) => {
                    e.preventDefault();
                    ui.go(s.key);
                  }}
                >
                  {t(s.label)}
                </a>
              </li>
            ))}
          </ul>
        </nav>
      ) : null}
      <main id="main" tabIndex={-1}>
        {me === undefined ? <p>{t('loading')}</p> : me === null ? <Login onSignedIn={setMe} /> : current === undefined ? <p>{t('nav.none')}</p> : <Section me={me} section={current.key} path={path} />}
      </main>
      <div class="sr-only" role="status" aria-live="polite" aria-atomic="true">
        {message}
      </div>
    </UiContext.Provider>
  );
}

function Section({ me, section, path }: { me: Me; section: string; path: string }) {
  const sub = path.startsWith(`${section}/`) ? path.slice(section.length + 1) : '';
  if (section === 'requests') return sub === '' ? <RequestsPage /> : <RequestPage id={sub} canDecide={may(me, 'requests:admin')} />;
  if (section === 'consent') return <ConsentPage />;
  if (section === 'audit') return <AuditPage />;
  if (section === 'datamap') return <DatamapPage />;
  return <IncidentsPage canWrite={may(me, 'incidents:write')} />;
}

/** A page's h1, focused when the page opens so keyboard and screen-reader users start there. */
function Heading({ children }: { children: ComponentChildren }) {
  const ref = useRef<HTMLHeadingElement>(null);
  useEffect(() => ref.current?.focus(), []);
  return (
    <h1 ref={ref} tabIndex={-1}>
      {children}
    </h1>
  );
}

function Login({ onSignedIn }: { onSignedIn: (me: Me) => void }) {
  const { t } = useUi();
  const [key, setKey] = useState('');
  const [error, setError] = useState('');
  const submit = async (e: Event) => {
    e.preventDefault();
    setError('');
    try {
      const me = await api.me(key.trim());
      session.set(key.trim());
      onSignedIn(me);
    } catch (err) {
      setError(err instanceof ApiError && err.status === 429 ? t('login.throttled') : t('login.invalid'));
    }
  };
  return (
    <section>
      <Heading>{t('login.heading')}</Heading>
      <p>{t('login.intro')}</p>
      <form onSubmit={(e) => void submit(e)} class="stack">
        <label for="api-key">{t('login.key')}</label>
        <input id="api-key" name="api-key" type="password" autoComplete="off" spellcheck={false} required value={key} onInput={(e) => setKey((e.currentTarget).value)} aria-describedby={error ? 'login-error' : undefined} aria-invalid={error ? true : undefined} />
        {error ? (
          <p id="login-error" role="alert" class="error">
            {error}
          </p>
        ) : null}
        <button type="submit">{t('login.submit')}</button>
      </form>
    </section>
  );
}

/** Loads `load()` whenever `deps` change; the answer, the error message, and a reload function. */
function useLoad<V>(load: () => Promise<V>, deps: unknown[]): { data: V | undefined; error: unknown; reload: () => void } {
  const [state, setState] = useState<{ data: V | undefined; error: unknown }>({ data: undefined, error: undefined });
  const [n, setN] = useState(0);
  useEffect(() => {
    let live = true;
    setState({ data: undefined, error: undefined });
    load().then(
      (data) => live && setState({ data, error: undefined }),
      (error: unknown) => live && setState({ data: undefined, error }),
    );
    return () => {
      live = false;
    };
  }, [...deps, n]);
  return { ...state, reload: () => setN((x) => x + 1) };
}

function Loading({ error, children }: { error: unknown; children?: ComponentChildren }) {
  const { t } = useUi();
  if (error !== undefined)
    return (
      <p role="alert" class="error">
        {failure(t, error)}
      </p>
    );
  return children === undefined ? <p>{t('loading')}</p> : <>{children}</>;
}

/** Ticks every 30 s so countdowns stay current. */
function useNow(): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const h = setInterval(() => setNow(Date.now()), 30_000);
    return () => clearInterval(h);
  }, []);
  return now;
}

function Countdown({ dueAt, now }: { dueAt: string; now: number }) {
  const { t } = useUi();
  const left = Date.parse(dueAt) - now;
  return left < 0 ? <span class="overdue">{t('req.overdueBy', { d: span(left) })}</span> : <span>{t('req.dueIn', { d: span(left) })}</span>;
}

function Select({ id, label, value, options, onChange }: { id: string; label: string; value: string; options: readonly string[]; onChange: (v: string) => void }) {
  const { t } = useUi();
  return (
    <div class="field">
      <label for={id}>{label}</label>
      <select id={id} value={value} onChange={(e) => onChange((e.currentTarget).value)}>
        <option value="">{t('any')}</option>
        {options.map((o) => (
          <option value={o} key={o}>
            {o}
          </option>
        ))}
      </select>
    </div>
  );
}

function RequestsPage() {
  const { t, lang, go } = useUi();
  const [draft, setDraft] = useState<RequestFilter>({});
  const [filter, setFilter] = useState<RequestFilter>({});
  const { data, error } = useLoad(() => api.requests(filter), [JSON.stringify(filter)]);
  const now = useNow();
  return (
    <section>
      <Heading>{t('req.heading')}</Heading>
      <form
        class="filters"
        aria-label={t('req.filters')}
        onSubmit={(e) => {
          e.preventDefault();
          setFilter({ ...draft });
        }}
      >
        <Select id="f-type" label={t('req.type')} value={draft.type ?? ''} options={REQUEST_TYPES} onChange={(v) => setDraft({ ...draft, type: v })} />
        <Select id="f-status" label={t('req.status')} value={draft.status ?? ''} options={REQUEST_STATUSES} onChange={(v) => setDraft({ ...draft, status: v })} />
        <div class="field">
          <label for="f-jurisdiction">{t('req.jurisdiction')}</label>
          <input id="f-jurisdiction" size={8} value={draft.jurisdiction ?? ''} onInput={(e) => setDraft({ ...draft, jurisdiction: (e.currentTarget).value.trim().toUpperCase() })} />
        </div>
        <div class="field check">
          <input id="f-overdue" type="checkbox" checked={draft.overdue === 'true'} onChange={(e) => setDraft({ ...draft, overdue: (e.currentTarget).checked ? 'true' : '' })} />
          <label for="f-overdue">{t('req.overdueOnly')}</label>
        </div>
        <button type="submit">{t('apply')}</button>
      </form>
      <Loading error={error}>
        {data === undefined ? undefined : data.requests.length === 0 ? (
          <p>{t('none')}</p>
        ) : (
          <Table head={[t('req.due'), t('req.left'), t('req.type'), t('req.status'), t('req.jurisdiction'), t('req.received')]} caption={t('req.count', { n: data.requests.length })}>
            {data.requests.map((r) => (
              <tr key={r.id} data-request={r.id}>
                <td>
                  <a
                    href={`/admin/requests/${r.id}`}
                    onClick={(e) => {
                      e.preventDefault();
                      go(`requests/${r.id}`);
                    }}
                    aria-label={`${t('req.open')}: ${r.type}, ${fmt(r.dueAt, lang)}`}
                  >
                    {fmt(r.dueAt, lang)}
                  </a>
                </td>
                <td>{r.completedAt === null ? <Countdown dueAt={r.dueAt} now={now} /> : '—'}</td>
                <td>{r.type}</td>
                <td>{r.status}</td>
                <td>{r.jurisdiction}</td>
                <td>{fmt(r.receivedAt, lang)}</td>
              </tr>
            ))}
          </Table>
        )}
      </Loading>
    </section>
  );
}

/** The scalar facts of a request's outcome (counts per system, errors), as the runner recorded them. */
function Outcome({ outcome }: { outcome: Record<string, unknown> }) {
  const entries = Object.entries(outcome);
  return (
    <dl class="facts">
      {entries.map(([k, v]) => (
        <div key={k}>
          <dt>{k}</dt>
          <dd>{typeof v === 'object' && v !== null ? <pre>{JSON.stringify(v, null, 2)}</pre> : String(v)}</dd>
        </div>
      ))}
    </dl>
  );
}

/** The steps run so far, summed per dataset (one system's data) with done and failed counts, then step by step. */
function Progress({ id, version }: { id: string; version: string }) {
  const { t } = useUi();
  const { data, error } = useLoad(() => api.tasks(id), [id, version]);
  if (error !== undefined || data === undefined) return <Loading error={error} />;
  if (data.tasks.length === 0) return <p>{t('req.noProgress')}</p>;
  const systems = new Map<string, { done: number; failed: number; phases: Set<string> }>();
  for (const task of data.tasks) {
    const dataset = task.target.replace(/^[a-z_]+:/, '').split('.')[0] ?? task.target;
    const s = systems.get(dataset) ?? { done: 0, failed: 0, phases: new Set<string>() };
    if (task.status === 'failed') s.failed++;
    else s.done++;
    s.phases.add(task.phase);
    systems.set(dataset, s);
  }
  return (
    <>
      <Table head={[t('req.system'), t('req.stepsDone'), t('req.stepsFailed'), t('req.phases')]} progress>
        {[...systems.entries()].map(([name, s]) => (
          <tr key={name}>
            <th scope="row">{name}</th>
            <td>{s.done}</td>
            <td class={s.failed > 0 ? 'overdue' : undefined}>{s.failed}</td>
            <td>{[...s.phases].join(', ')}</td>
          </tr>
        ))}
      </Table>
      <details>
        <summary>{t('req.steps', { n: data.tasks.length })}</summary>
        <ol>
          {data.tasks.map((task) => (
            <li key={task.seq}>
              {task.target} — {task.status}
              {task.error ? ` (${task.error})` : ''}
            </li>
          ))}
        </ol>
      </details>
    </>
  );
}

function RequestPage({ id, canDecide }: { id: string; canDecide: boolean }) {
  const { t, lang, go, announce } = useUi();
  const { data, error, reload } = useLoad(() => api.request(id), [id]);
  const [reason, setReason] = useState('');
  const [problem, setProblem] = useState('');
  const now = useNow();
  const act = async (action: 'approve' | 'reject' | 'extend') => {
    setProblem('');
    if (action !== 'approve' && reason.trim() === '') {
      setProblem(t('req.reasonNeeded'));
      return;
    }
    try {
      const r = await api.decide(id, action, reason.trim());
      setReason('');
      announce(t('req.done', { status: r.status }));
      reload();
    } catch (err) {
      setProblem(failure(t, err));
    }
  };
  const download = async (path: string, name: string) => {
    try {
      saveBlob(await api.blob(path), name);
    } catch (err) {
      setProblem(failure(t, err));
    }
  };
  const r: RequestView | undefined = data;
  const done = r !== undefined && (r.status === 'completed' || r.status === 'partially_completed');
  return (
    <section>
      <p>
        <a
          href="/admin/requests"
          onClick={(e) => {
            e.preventDefault();
            go('requests');
          }}
        >
          ← {t('back')}
        </a>
      </p>
      <Loading error={error}>
        {r === undefined ? undefined : (
          <>
            <Heading>
              {t('req.detail')}: {r.type} ({r.jurisdiction})
            </Heading>
            <dl class="facts">
              <div>
                <dt>{t('req.status')}</dt>
                <dd data-field="status">{r.status}</dd>
              </div>
              <div>
                <dt>{t('req.due')}</dt>
                <dd>
                  {fmt(r.dueAt, lang)} {r.completedAt === null ? <Countdown dueAt={r.dueAt} now={now} /> : null}
                </dd>
              </div>
              <div>
                <dt>{t('req.extended')}</dt>
                <dd>{r.extended ? t('req.yes') : t('req.no')}</dd>
              </div>
              <div>
                <dt>{t('req.received')}</dt>
                <dd>{fmt(r.receivedAt, lang)}</dd>
              </div>
              <div>
                <dt>id</dt>
                <dd>
                  <code>{r.id}</code>
                </dd>
              </div>
            </dl>
            <h2>{t('req.progress')}</h2>
            <Progress id={r.id} version={r.status} />
            {r.outcome === null ? null : <Outcome outcome={r.outcome} />}
            {canDecide && r.completedAt === null ? (
              <form class="stack" onSubmit={(e) => e.preventDefault()} aria-labelledby="decision-h">
                <h2 id="decision-h">{t('req.decision')}</h2>
                <label for="reason">{t('req.reason')}</label>
                <textarea id="reason" rows={3} maxLength={1000} value={reason} onInput={(e) => setReason((e.currentTarget).value)} />
                <div class="row">
                  {r.status === 'awaiting_approval' ? (
                    <button type="button" onClick={() => void act('approve')}>
                      {t('req.approve')}
                    </button>
                  ) : null}
                  <button type="button" class="danger" onClick={() => void act('reject')}>
                    {t('req.reject')}
                  </button>
                  {!r.extended ? (
                    <button type="button" onClick={() => void act('extend')}>
                      {t('req.extend')}
                    </button>
                  ) : null}
                </div>
              </form>
            ) : null}
            {problem ? (
              <p role="alert" class="error">
                {problem}
              </p>
            ) : null}
            {done && canDecide && (r.type === 'access' || r.type === 'portability') ? (
              <button type="button" onClick={() => void download(`/v1/requests/${r.id}/package?format=zip`, `custodian-${r.id}.zip`)}>
                {t('req.package')}
              </button>
            ) : null}
            {done && r.type === 'erasure' ? (
              <button type="button" onClick={() => void download(`/v1/requests/${r.id}/certificate`, `erasure-certificate-${r.id}.json`)}>
                {t('req.certificate')}
              </button>
            ) : null}
            <h2>{t('req.history')}</h2>
            <ol class="history">
              {(r.history ?? []).map((h, i) => (
                <li key={i}>
                  {fmt(h.at, lang)}: {h.from ?? '∅'} → <strong>{h.to}</strong> ({h.actor}){h.reason ? ` — ${h.reason}` : ''}
                </li>
              ))}
            </ol>
          </>
        )}
      </Loading>
    </section>
  );
}

/** A line chart of grant and withdrawal rates (0..1) over the buckets, as inline SVG with a text title. */
function RateChart({ purpose, series, label }: { purpose: string; series: ConsentRates['purposes'][number]['series']; label: string }) {
  const { t } = useUi();
  const w = 600;
  const h = 160;
  const pad = 30;
  const x = (i: number) => pad + (series.length <= 1 ? 0 : (i * (w - 2 * pad)) / (series.length - 1));
  const y = (v: number) => h - pad + -v * (h - 2 * pad);
  const line = (k: 'grantRate' | 'withdrawRate') => series.map((s, i) => `${i === 0 ? 'M' : 'L'}${x(i).toFixed(1)},${y(s[k]).toFixed(1)}`).join(' ');
  const id = `chart-${purpose.replace(/[^A-Za-z0-9_-]/g, '-')}`;
  return (
    <svg class="chart" viewBox={`0 0 ${w} ${h}`} role="img" aria-labelledby={`${id}-title`}>
      <title id={`${id}-title`}>{label}</title>
      <line x1={pad} y1={y(0)} x2={w - pad} y2={y(0)} class="axis" />
      <line x1={pad} y1={y(1)} x2={w - pad} y2={y(1)} class="grid" />
      <text x={2} y={y(1) + 4} class="tick">
        100%
      </text>
      <text x={2} y={y(0) + 4} class="tick">
        0%
      </text>
      <path d={line('grantRate')} class="grant" />
      <path d={line('withdrawRate')} class="withdraw" />
      <text x={pad} y={h - 6} class="tick">
        {series[0]?.bucket}
      </text>
      <text x={w - pad} y={h - 6} class="tick end">
        {series.at(-1)?.bucket}
      </text>
      <text x={w - pad} y={14} class="legend grant-text end">
        — {t('consent.grantRate')}
      </text>
      <text x={w - pad} y={28} class="legend withdraw-text end">
        - - {t('consent.withdrawRate')}
      </text>
    </svg>
  );
}

const isoDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);

function ConsentPage() {
  const { t, announce } = useUi();
  const [range, setRange] = useState({ from: isoDay(Date.now() - 29 * 86_400_000), to: isoDay(Date.now()), bucket: 'day' as 'day' | 'month' });
  const [draft, setDraft] = useState(range);
  const { data, error } = useLoad(() => api.consentRates(`${range.from}T00:00:00.000Z`, new Date(Date.parse(`${range.to}T00:00:00.000Z`) + 86_400_000).toISOString(), range.bucket), [JSON.stringify(range)]);
  const [subject, setSubject] = useState('');
  const [events, setEvents] = useState<ConsentEvent[] | null>(null);
  const [problem, setProblem] = useState('');
  const lookup = async (e: Event) => {
    e.preventDefault();
    setProblem('');
    try {
      const h = await api.consentHistory(subject.trim());
      setEvents(h.events);
      announce(`${h.events.length}`);
    } catch (err) {
      setEvents(null);
      setProblem(failure(t, err));
    }
  };
  const proof = async (id: string) => {
    try {
      saveBlob(await api.blob(`/v1/consent/events/${encodeURIComponent(id)}/proof`), `proof-of-consent-${id}.json`);
    } catch (err) {
      setProblem(failure(t, err));
    }
  };
  return (
    <section>
      <Heading>{t('consent.heading')}</Heading>
      <form
        class="filters"
        onSubmit={(e) => {
          e.preventDefault();
          setRange({ ...draft });
        }}
      >
        <div class="field">
          <label for="c-from">{t('consent.from')}</label>
          <input id="c-from" type="date" required value={draft.from} onInput={(e) => setDraft({ ...draft, from: (e.currentTarget).value })} />
        </div>
        <div class="field">
          <label for="c-to">{t('consent.to')}</label>
          <input id="c-to" type="date" required value={draft.to} onInput={(e) => setDraft({ ...draft, to: (e.currentTarget).value })} />
        </div>
        <div class="field">
          <label for="c-bucket">{t('consent.bucket')}</label>
          <select id="c-bucket" value={draft.bucket} onChange={(e) => setDraft({ ...draft, bucket: (e.currentTarget).value as 'day' | 'month' })}>
            <option value="day">{t('consent.day')}</option>
            <option value="month">{t('consent.month')}</option>
          </select>
        </div>
        <button type="submit">{t('apply')}</button>
      </form>
      <Loading error={error}>
        {data === undefined ? undefined : data.purposes.length === 0 ? (
          <p>{t('consent.noData')}</p>
        ) : (
          data.purposes.map((p) => (
            <article key={p.purpose} class="card" data-purpose={p.purpose}>
              <h2>{p.purpose}</h2>
              <RateChart purpose={p.purpose} series={p.series} label={t('consent.chart', { purpose: p.purpose, from: range.from, to: range.to })} />
              <details>
                <summary>{t('consent.table')}</summary>
                <Table head={[t('consent.bucket'), t('consent.granted'), t('consent.denied'), t('consent.withdrawn'), t('consent.grantRate')]}>
                  {p.series
                    .filter((s) => s.total > 0)
                    .map((s) => (
                      <tr key={s.bucket}>
                        <th scope="row">{s.bucket}</th>
                        <td>{s.granted}</td>
                        <td>{s.denied}</td>
                        <td>{s.withdrawn}</td>
                        <td>{Math.round(s.grantRate * 100)}%</td>
                      </tr>
                    ))}
                </Table>
              </details>
            </article>
          ))
        )}
      </Loading>
      <h2>{t('consent.subject')}</h2>
      <form class="filters" onSubmit={(e) => void lookup(e)}>
        <div class="field">
          <label for="c-subject">{t('consent.subjectId')}</label>
          <input id="c-subject" required maxLength={256} autoComplete="off" value={subject} onInput={(e) => setSubject((e.currentTarget).value)} />
        </div>
        <button type="submit">{t('consent.lookup')}</button>
      </form>
      {problem ? (
        <p role="alert" class="error">
          {problem}
        </p>
      ) : null}
      {events === null ? null : events.length === 0 ? (
        <p>{t('none')}</p>
      ) : (
        <Table head={[t('consent.recorded'), t('consent.purpose'), t('consent.decision'), t('consent.method'), t('consent.proof')]}>
          {events.map((e) => (
            <tr key={e.id}>
              <td>{e.recordedAt}</td>
              <td>{e.purpose}</td>
              <td>{e.decision}</td>
              <td>{e.method}</td>
              <td>
                <button type="button" onClick={() => void proof(e.id)} aria-label={`${t('download')}: ${t('consent.proof')}, ${e.purpose}, ${e.recordedAt}`}>
                  {t('download')}
                </button>
              </td>
            </tr>
          ))}
        </Table>
      )}
    </section>
  );
}

function AuditPage() {
  const { t, announce } = useUi();
  const [draft, setDraft] = useState({ action: '', from: '', to: '', subjectId: '' });
  const [query, setQuery] = useState({ ...draft, cursor: '' });
  const { data, error } = useLoad(
    () =>
      api.audit({
        action: query.action || undefined,
        subjectId: query.subjectId || undefined,
        from: query.from ? `${query.from}T00:00:00.000Z` : undefined,
        to: query.to ? `${query.to}T23:59:59.999Z` : undefined,
        cursor: query.cursor || undefined,
      }),
    [JSON.stringify(query)],
  );
  const [progress, setProgress] = useState<{ done: number; results: string[]; ok: boolean | null; running: boolean }>({ done: 0, results: [], ok: null, running: false });
  const [problem, setProblem] = useState('');
  const verify = async () => {
    const trees = ['audit', 'consent'] as const;
    const results: string[] = [];
    let ok = true;
    setProgress({ done: 0, results, ok: null, running: true });
    announce(t('audit.verifying', { tree: trees[0], done: 1, total: trees.length }));
    try {
      for (const [i, tree] of trees.entries()) {
        const r = await api.verify(tree);
        ok &&= r.ok;
        results.push(r.ok ? t('audit.verifiedTree', { tree, size: r.size ?? 0, heads: r.headsChecked ?? 0 }) : t('audit.failedTree', { tree, position: r.position ?? '—', problem: r.problem ?? '' }));
        setProgress({ done: i + 1, results: [...results], ok: null, running: i + 1 < trees.length });
      }
      setProgress({ done: trees.length, results, ok, running: false });
      announce(ok ? t('audit.verified') : results.join(' '));
    } catch (err) {
      setProgress({ done: 0, results, ok: false, running: false });
      setProblem(failure(t, err));
    }
  };
  const bundle = async (seq: number) => {
    try {
      saveBlob(await api.blob(`/v1/audit/entries/${seq}/proof?tree=audit`), `audit-proof-${seq}.json`);
    } catch (err) {
      setProblem(failure(t, err));
    }
  };
  return (
    <section>
      <Heading>{t('audit.heading')}</Heading>
      <h2>{t('audit.verifyHeading')}</h2>
      <button type="button" onClick={() => void verify()} disabled={progress.running} data-action="verify">
        {t('audit.verify')}
      </button>
      {progress.running || progress.results.length > 0 ? (
        <div class="verify">
          <label for="verify-progress">{progress.running ? t('audit.verifying', { tree: progress.done === 0 ? 'audit' : 'consent', done: progress.done + 1, total: 2 }) : t('audit.verifyHeading')}</label>
          <progress id="verify-progress" max={2} value={progress.done} />
          <ul data-verify-results>
            {progress.results.map((r) => (
              <li key={r}>{r}</li>
            ))}
          </ul>
          {progress.ok === true ? (
            <p class="ok" data-verified>
              ✔ {t('audit.verified')}
            </p>
          ) : null}
        </div>
      ) : null}
      {problem ? (
        <p role="alert" class="error">
          {problem}
        </p>
      ) : null}
      <form
        class="filters"
        onSubmit={(e) => {
          e.preventDefault();
          setQuery({ ...draft, cursor: '' });
        }}
      >
        <div class="field">
          <label for="a-action">{t('audit.action')}</label>
          <input id="a-action" value={draft.action} placeholder="request.created" onInput={(e) => setDraft({ ...draft, action: (e.currentTarget).value.trim() })} />
        </div>
        <div class="field">
          <label for="a-subject">{t('consent.subjectId')}</label>
          <input id="a-subject" value={draft.subjectId} autoComplete="off" onInput={(e) => setDraft({ ...draft, subjectId: (e.currentTarget).value.trim() })} />
        </div>
        <div class="field">
          <label for="a-from">{t('consent.from')}</label>
          <input id="a-from" type="date" value={draft.from} onInput={(e) => setDraft({ ...draft, from: (e.currentTarget).value })} />
        </div>
        <div class="field">
          <label for="a-to">{t('consent.to')}</label>
          <input id="a-to" type="date" value={draft.to} onInput={(e) => setDraft({ ...draft, to: (e.currentTarget).value })} />
        </div>
        <button type="submit">{t('apply')}</button>
      </form>
      <Loading error={error}>
        {data === undefined ? undefined : (
          <>
            <AuditTable entries={data.entries} onProof={(seq) => void bundle(seq)} />
            <div class="row">
              {query.cursor ? (
                <button type="button" onClick={() => setQuery({ ...query, cursor: '' })}>
                  {t('audit.first')}
                </button>
              ) : null}
              {data.nextCursor ? (
                <button type="button" onClick={() => setQuery({ ...query, cursor: data.nextCursor! })}>
                  {t('audit.next')}
                </button>
              ) : null}
            </div>
          </>
        )}
      </Loading>
    </section>
  );
}

/** A data table: an optional caption, one header row of column headers, and the rows given as children. */
function Table({ head, caption, progress, children }: { head: readonly string[]; caption?: ComponentChildren; progress?: boolean; children: ComponentChildren }) {
  return (
    <table data-progress={progress === true ? '' : undefined}>
      {caption === undefined ? null : <caption>{caption}</caption>}
      <thead>
        <tr>
          {head.map((h) => (
            <th key={h} scope="col">
              {h}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>{children}</tbody>
    </table>
  );
}

function AuditTable({ entries, onProof }: { entries: AuditEntry[]; onProof: (seq: number) => void }) {
  const { t } = useUi();
  if (entries.length === 0) return <p>{t('none')}</p>;
  return (
    <Table head={[t('audit.time'), t('audit.action'), t('audit.actor'), t('audit.target'), t('audit.outcome'), t('audit.proof')]}>
      {entries.map((e) => (
        <tr key={e.id}>
          <td>{e.time}</td>
          <td>{e.action}</td>
          <td>{e.actor}</td>
          <td>
            {e.targetType}
            {e.targetRef ? `: ${e.targetRef}` : ''}
          </td>
          <td>{e.outcome}</td>
          <td>
            {e.seq === null ? (
              t('audit.pending')
            ) : (
              <button type="button" onClick={() => onProof(e.seq!)} aria-label={`${t('download')}: ${t('audit.proof')} #${e.seq}`}>
                {t('download')}
              </button>
            )}
          </td>
        </tr>
      ))}
    </Table>
  );
}

function DatamapPage() {
  const { t } = useUi();
  const graph = useLoad(() => api.graph(), []);
  const svg = useLoad(async () => URL.createObjectURL(await api.blob('/v1/datamap/graph?format=svg')), []);
  const dpia = useLoad(() => api.dpia(), []);
  const [problem, setProblem] = useState('');
  useEffect(() => () => (svg.data ? URL.revokeObjectURL(svg.data) : undefined), [svg.data]);
  const missing = graph.error instanceof ApiError && graph.error.status === 404;
  const download = async (path: string, name: string) => {
    try {
      saveBlob(await api.blob(path), name);
    } catch (err) {
      setProblem(failure(t, err));
    }
  };
  const label = (nodes: GraphNode[], id: string) => nodes.find((n) => n.id === id)?.label ?? id;
  return (
    <section>
      <Heading>{t('dm.heading')}</Heading>
      {missing ? (
        <p>{t('dm.missing')}</p>
      ) : (
        <>
          <h2>{t('dm.graph')}</h2>
          <Loading error={graph.error}>
            {graph.data === undefined ? undefined : (
              <>
                {svg.data ? <img class="graph" src={svg.data} alt={t('dm.graphAlt', { nodes: graph.data.nodes.length, edges: graph.data.edges.length })} /> : null}
                <Table head={[t('dm.from'), t('dm.kind'), t('dm.to')]} caption={t('dm.flows')}>
                  {graph.data.edges.map((e: GraphEdge, i) => (
                    <tr key={i}>
                      <td>{label(graph.data!.nodes, e.from)}</td>
                      <td>
                        {e.kind}
                        {e.label ? ` (${e.label})` : ''}
                      </td>
                      <td>{label(graph.data!.nodes, e.to)}</td>
                    </tr>
                  ))}
                </Table>
              </>
            )}
          </Loading>
          <h2>{t('dm.ropa')}</h2>
          <div class="row">
            <button type="button" onClick={() => void download('/v1/reports/ropa?format=html', 'ropa.html')}>
              {t('dm.ropaHtml')}
            </button>
            <button type="button" onClick={() => void download('/v1/reports/ropa?format=csv', 'ropa.csv')}>
              {t('dm.ropaCsv')}
            </button>
          </div>
          {problem ? (
            <p role="alert" class="error">
              {problem}
            </p>
          ) : null}
          <h2>{t('dm.dpia')}</h2>
          <Loading error={dpia.error}>{dpia.data === undefined ? undefined : <Dpia report={dpia.data} />}</Loading>
        </>
      )}
    </section>
  );
}

function Dpia({ report }: { report: DpiaReport }) {
  const { t } = useUi();
  return (
    <Table head={[t('consent.purpose'), t('dm.criteria'), t('dm.conclusion')]} caption={report.citation}>
      {report.screenings.map((s) => (
        <tr key={s.purpose} data-dpia={s.conclusion}>
          <th scope="row">
            {s.title} <code>{s.purpose}</code>
          </th>
          <td>
            {s.metCount} / {s.criteria.length}
            {s.metCount > 0 ? `: ${s.criteria.filter((c) => c.met).map((c) => c.title).join('; ')}` : ''}
          </td>
          <td>{s.conclusionText}</td>
        </tr>
      ))}
    </Table>
  );
}

function IncidentsPage({ canWrite }: { canWrite: boolean }) {
  const { t, lang } = useUi();
  const { data, error, reload } = useLoad(() => api.incidents(), []);
  const now = useNow();
  // A server without the incidents API answers 404: say so, never invent data.
  if (error instanceof ApiError && error.status === 404)
    return (
      <section>
        <Heading>{t('inc.heading')}</Heading>
        <p data-unavailable>{t('inc.unavailable')}</p>
      </section>
    );
  const open = (data?.incidents ?? []).filter((i) => i.status !== 'closed' && i.status !== 'dismissed');
  const clock = (i: Incident) => i.deadlines.find((d) => d.audience === 'authority' && d.stage === 'initial') ?? i.deadlines.find((d) => d.audience === 'authority');
  return (
    <section>
      <Heading>{t('inc.heading')}</Heading>
      <Loading error={error}>
        {data === undefined ? undefined : open.length === 0 ? (
          <p>{t('none')}</p>
        ) : (
          <Table head={[t('inc.heading'), t('req.status'), t('inc.detected'), t('inc.clock'), t('inc.assessment')]}>
            {open.map((i) => {
              const d = clock(i);
              return (
                <tr key={i.id}>
                  <th scope="row">{i.title}</th>
                  <td>{i.status}</td>
                  <td>{fmt(i.detectedAt, lang)}</td>
                  <td>{d === undefined ? '—' : d.met ? t('inc.met') : d.dueAt === null ? t('inc.noDeadline') : <Countdown dueAt={d.dueAt} now={now} />}</td>
                  <td>
                    {i.assessment.outcome} ({t('inc.severity', { s: i.assessment.computed.severity })})
                  </td>
                </tr>
              );
            })}
          </Table>
        )}
      </Loading>
      {canWrite ? <NewIncident onOpened={reload} /> : null}
    </section>
  );
}

/** A datetime-local value (`2026-03-01T10:00`, the browser's time zone) as an ISO instant. */
const instantOf = (local: string) => new Date(local).toISOString();

/**
 * Records a personal data breach (POST /v1/incidents): title, what happened, when it was detected (the GDPR Art. 33(1)
 * 72 hours run from then), the collections of the data map it touched (the server derives the systems and the data
 * categories from them), an estimate of the people affected, encryption, and the jurisdictions whose deadlines apply.
 * The server assesses the risk and computes the deadlines.
 */
function NewIncident({ onOpened }: { onOpened: () => void }) {
  const { t, announce } = useUi();
  // Without `datamap:read` (or a data map) there is nothing to choose from: the form still records the incident.
  const map = useLoad(() => api.datamap(), []);
  const empty = { title: '', description: '', detectedAt: '', affected: '', encrypted: false, jurisdictions: 'EU', collections: [] as string[] };
  const [draft, setDraft] = useState(empty);
  const [problem, setProblem] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setProblem('');
    setBusy(true);
    try {
      const jurisdictions = draft.jurisdictions
        .split(',')
        .map((j) => j.trim().toUpperCase())
        .filter((j) => j !== '');
      const created = await api.createIncident({
        title: draft.title.trim(),
        ...(draft.description.trim() === '' ? {} : { description: draft.description.trim() }),
        ...(draft.detectedAt === '' ? {} : { detectedAt: instantOf(draft.detectedAt) }),
        ...(draft.affected === '' ? {} : { affectedCount: Number(draft.affected) }),
        ...(draft.collections.length === 0 ? {} : { collections: draft.collections }),
        ...(jurisdictions.length === 0 ? {} : { jurisdictions }),
        encrypted: draft.encrypted,
      });
      setDraft(empty);
      announce(t('inc.opened', { title: created.title }));
      onOpened();
    } catch (err) {
      setProblem(failure(t, err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="stack" onSubmit={(e) => void submit(e)} aria-labelledby="new-incident-h" data-new-incident>
      <h2 id="new-incident-h">{t('inc.new')}</h2>
      <p id="new-incident-intro">{t('inc.newIntro')}</p>
      <label for="i-title">{t('inc.title')}</label>
      <input id="i-title" required maxLength={200} autoComplete="off" value={draft.title} onInput={(e) => setDraft({ ...draft, title: e.currentTarget.value })} aria-describedby="new-incident-intro" />
      <label for="i-description">{t('inc.description')}</label>
      <textarea id="i-description" rows={3} maxLength={10_000} value={draft.description} onInput={(e) => setDraft({ ...draft, description: e.currentTarget.value })} />
      <label for="i-detected">{t('inc.detectedAt')}</label>
      <input id="i-detected" type="datetime-local" value={draft.detectedAt} onInput={(e) => setDraft({ ...draft, detectedAt: e.currentTarget.value })} />
      {map.data !== undefined && map.data.manifest.systems.length > 0 ? (
        <fieldset>
          <legend>{t('inc.collections')}</legend>
          {map.data.manifest.systems.map((system) => (
            <fieldset key={system.key} class="system">
              <legend>{system.name}</legend>
              {(system.datasets ?? []).flatMap((dataset) =>
                dataset.collections.map((c) => {
                  const address = `${dataset.key}.${c.name}`;
                  const id = `i-collection-${address.replace(/[^A-Za-z0-9_-]/g, '-')}`;
                  return (
                    <div class="field check" key={address}>
                      <input
                        id={id}
                        type="checkbox"
                        checked={draft.collections.includes(address)}
                        onChange={(e) => setDraft({ ...draft, collections: e.currentTarget.checked ? [...draft.collections, address] : draft.collections.filter((k) => k !== address) })}
                      />
                      <label for={id}>
                        <code>{address}</code>
                      </label>
                    </div>
                  );
                }),
              )}
            </fieldset>
          ))}
        </fieldset>
      ) : null}
      <label for="i-affected">{t('inc.affected')}</label>
      <input id="i-affected" type="number" min={0} step={1} inputMode="numeric" value={draft.affected} onInput={(e) => setDraft({ ...draft, affected: e.currentTarget.value })} />
      <div class="field check">
        <input id="i-encrypted" type="checkbox" checked={draft.encrypted} onChange={(e) => setDraft({ ...draft, encrypted: e.currentTarget.checked })} />
        <label for="i-encrypted">{t('inc.encrypted')}</label>
      </div>
      <label for="i-jurisdictions">{t('inc.jurisdictions')}</label>
      <input id="i-jurisdictions" autoComplete="off" value={draft.jurisdictions} onInput={(e) => setDraft({ ...draft, jurisdictions: e.currentTarget.value })} />
      {problem ? (
        <p role="alert" class="error">
          {problem}
        </p>
      ) : null}
      <div class="row">
        <button type="submit" disabled={busy}>
          {t('inc.open')}
        </button>
      </div>
    </form>
  );
}
