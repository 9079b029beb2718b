import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, api, setCsrf, type Config, type ConsentView, type RectifiableField, type RequestView, type Session } from './api.ts';
import { MESSAGES, formatDate, type Language, type Messages } from './i18n.ts';

type View = 'signin' | 'consent' | 'new' | 'requests';
interface Notice {
  readonly kind: 'status' | 'error';
  readonly text: string;
}

/** Picks the first of the browser's languages the center offers. */
function initialLanguage(config: Config): Language {
  const stored = document.documentElement.lang.slice(0, 2);
  if ((config.languages as string[]).includes(stored)) return stored as Language;
  for (const l of navigator.languages) {
    const code = l.slice(0, 2);
    if ((config.languages as string[]).includes(code)) return code as Language;
  }
  return config.defaultLanguage;
}

/** The privacy center page: sign-in, then consent, new request and own requests. */
export function App({ config }: { config: Config }) {
  const [lang, setLang] = useState<Language>(() => initialLanguage(config));
  const [session, setSession] = useState<Session | null>(null);
  const [view, setView] = useState<View>('signin');
  const [notice, setNotice] = useState<Notice | null>(null);
  const [ready, setReady] = useState(false);
  const t = MESSAGES[lang];
  const heading = useRef<HTMLHeadingElement>(null);
  const firstRender = useRef(true);

  useEffect(() => {
    document.documentElement.lang = lang;
    document.title = `${config.name}`;
  }, [lang]);

  useEffect(() => {
    api
      .session()
      .then((s) => {
        if (s === undefined) return;
        setCsrf(s.csrfToken);
        setSession(s);
        setView('consent');
      })
      .catch(() => undefined)
      .finally(() => setReady(true));
  }, []);

  // Moving to another view moves the focus to its heading, so keyboard and screen-reader users start there.
  useEffect(() => {
    if (firstRender.current) {
      firstRender.current = false;
      return;
    }
    heading.current?.focus();
  }, [view]);

  const fail = (err: unknown) => {
    if (err instanceof ApiError && err.code === 'CST_ERR_PRIVACY_SESSION_REQUIRED') {
      setSession(null);
      setView('signin');
      setNotice({ kind: 'error', text: t.sessionExpired });
      return;
    }
    setNotice({ kind: 'error', text: t.error });
  };
  const go = (next: View) => {
    setNotice(null);
    setView(next);
  };
  const signOut = async () => {
    try {
      await api.signOut();
    } catch {
      // The session may already be gone; the page signs out either way.
    }
    setCsrf('');
    setSession(null);
    setView('signin');
    setNotice({ kind: 'status', text: t.signedOut });
  };

  const ctx = { t, lang, config, heading, setNotice, fail };
  return (
    <>
      <a class="skip" href="#main">
        {t.skip}
      </a>
      <header class="top">
        <div class="brand">
          {config.logoUrl !== null && <img src={config.logoUrl} alt="" class="logo" />}
          <span class="name">{config.name}</span>
        </div>
        {config.languages.length > 1 && (
          <div class="lang">
            <label for="language">{t.language}</label>
            <select id="language" value={lang} onChange={(e) => setLang(e.currentTarget.value as Language)}>
              {config.languages.map((l) => (
                <option value={l} lang={l} key={l}>
                  {l === 'de' ? 'Deutsch' : 'English'}
                </option>
              ))}
            </select>
          </div>
        )}
      </header>
      {session !== null && (
        <nav aria-label={t.navLabel} class="nav">
          <p class="who">
            {t.signedInAs} <strong>{session.email}</strong>
          </p>
          <ul>
            {(['consent', 'new', 'requests'] as const).map((v) => (
              <li key={v}>
                <button type="button" class="link" aria-current={view === v ? 'page' : undefined} onClick={() => go(v)}>
                  {v === 'consent' ? t.navConsent : v === 'new' ? t.navNewRequest : t.navRequests}
                </button>
              </li>
            ))}
            <li>
              <button type="button" class="link" onClick={() => void signOut()}>
                {t.signOut}
              </button>
            </li>
          </ul>
        </nav>
      )}
      <main id="main" tabIndex={-1}>
        <div role="status" aria-live="polite" aria-atomic="true" class="notice status-region">
          {notice?.kind === 'status' ? notice.text : ''}
        </div>
        <div role="alert" aria-atomic="true" class="notice error-region">
          {notice?.kind === 'error' ? notice.text : ''}
        </div>
        {!ready ? null : session === null || view === 'signin' ? (
          <SignIn
            {...ctx}
            onSignedIn={(s) => {
              setCsrf(s.csrfToken);
              setSession(s);
              setNotice({ kind: 'status', text: t.signedIn });
              setView('consent');
            }}
          />
        ) : view === 'consent' ? (
          <Consent {...ctx} />
        ) : view === 'new' ? (
          <NewRequest
            {...ctx}
            onCreated={() => {
              setView('requests');
              setNotice({ kind: 'status', text: t.requestCreated });
            }}
          />
        ) : (
          <Requests {...ctx} />
        )}
      </main>
      {config.privacyPolicyUrl !== null && (
        <footer class="foot">
          <a href={config.privacyPolicyUrl}>{t.privacyPolicy}</a>
        </footer>
      )}
    </>
  );
}

interface Ctx {
  t: Messages;
  lang: Language;
  config: Config;
  heading: { current: HTMLHeadingElement | null };
  setNotice: (n: Notice | null) => void;
  fail: (err: unknown) => void;
}

function SignIn({ t, lang, heading, setNotice, fail, onSignedIn }: Ctx & { onSignedIn: (s: Session) => void }) {
  const [email, setEmail] = useState('');
  const [code, setCode] = useState('');
  const [challenge, setChallenge] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const codeInput = useRef<HTMLInputElement>(null);
  const emailInput = useRef<HTMLInputElement>(null);

  useEffect(() => {
    if (challenge !== null) codeInput.current?.focus();
  }, [challenge]);

  const send = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    try {
      const started = await api.signIn(email, lang);
      setChallenge(started.challengeId);
      setCode('');
      setNotice({ kind: 'status', text: t.codeSent });
    } catch (err) {
      if (err instanceof ApiError && err.status === 400) setNotice({ kind: 'error', text: `${t.email}: ${t.error}` });
      else fail(err);
    } finally {
      setBusy(false);
    }
  };
  const verify = async (e: Event) => {
    e.preventDefault();
    if (challenge === null) return;
    setBusy(true);
    try {
      onSignedIn(await api.verify(challenge, code.trim()));
    } catch (err) {
      if (err instanceof ApiError && err.code === 'CST_ERR_PRIVACY_CODE_INVALID') {
        const left = (err.details as { attemptsLeft?: number } | undefined)?.attemptsLeft ?? 0;
        setNotice({ kind: 'error', text: t.wrongCode(left) });
        codeInput.current?.select();
      } else if (err instanceof ApiError && err.code === 'CST_ERR_PRIVACY_CODE_EXPIRED') {
        setNotice({ kind: 'error', text: t.codeExpired });
        setChallenge(null);
      } else fail(err);
    } finally {
      setBusy(false);
    }
  };

  if (challenge === null) {
    return (
      <section aria-labelledby="signin-title">
        <h1 id="signin-title" tabIndex={-1} ref={heading}>
          {t.signInTitle}
        </h1>
        <p id="signin-intro">{t.signInIntro}</p>
        <form onSubmit={(e) => void send(e)} aria-describedby="signin-intro">
          <label for="email">{t.email}</label>
          <input id="email" ref={emailInput} type="email" name="email" autoComplete="email" required value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
          <button type="submit" class="primary" disabled={busy}>
            {t.sendCode}
          </button>
        </form>
      </section>
    );
  }
  return (
    <section aria-labelledby="code-title">
      <h1 id="code-title" tabIndex={-1} ref={heading}>
        {t.codeTitle}
      </h1>
      <p id="code-intro">{t.codeIntro}</p>
      <form onSubmit={(e) => void verify(e)} aria-describedby="code-intro">
        <label for="code">{t.code}</label>
        <input
          id="code"
          ref={codeInput}
          name="code"
          inputMode="numeric"
          autoComplete="one-time-code"
          pattern="[0-9]{6}"
          maxLength={6}
          required
          value={code}
          onInput={(e) => setCode(e.currentTarget.value)}
        />
        <button type="submit" class="primary" disabled={busy}>
          {t.verify}
        </button>
        <button
          type="button"
          class="secondary"
          onClick={() => {
            setChallenge(null);
            setNotice(null);
          }}
        >
          {t.otherAddress}
        </button>
      </form>
    </section>
  );
}

function Consent({ t, lang, heading, setNotice, fail }: Ctx) {
  const [consent, setConsent] = useState<ConsentView | null>(null);
  const [busy, setBusy] = useState<string | null>(null);

  // Purpose texts come in the page's language (translated in the branding file, else English): reload on a switch.
  useEffect(() => {
    api.consent(lang).then(setConsent).catch(fail);
  }, [lang]);

  const decide = async (key: string, title: string, decision: 'granted' | 'withdrawn', objection: boolean) => {
    setBusy(key);
    try {
      setConsent(await api.decide(key, decision, lang));
      setNotice({ kind: 'status', text: decision === 'granted' ? t.grantedMessage(title) : objection ? t.objectedMessage(title) : t.withdrawnMessage(title) });
    } catch (err) {
      fail(err);
    } finally {
      setBusy(null);
    }
  };

  return (
    <section aria-labelledby="consent-title">
      <h1 id="consent-title" tabIndex={-1} ref={heading}>
        {t.consentTitle}
      </h1>
      <p>{t.consentIntro}</p>
      {consent?.gpc.honoured === true && (
        // Shown on every visit with the signal (11 CCR §7025(c)(6): display whether the signal was processed).
        <div class="gpc" id="gpc-notice">
          <p>{t.gpcApplied}</p>
          <p>
            {consent.gpc.optedOut.length > 0
              ? t.gpcPurposes(consent.purposes.filter((p) => consent.gpc.optedOut.includes(p.key)).map((p) => p.title))
              : t.gpcOwnChoice}
          </p>
        </div>
      )}
      <ul class="purposes">
        {consent?.purposes.map((p) => {
          const on = p.status === 'granted';
          const off = p.status === 'withdrawn' || p.status === 'denied';
          // A purpose that does not rest on consent is in use until the person objects (GDPR Art. 21(1)).
          const objection = p.legalBasis !== 'consent';
          const byGpc = p.status === 'denied' && p.method === 'gpc';
          const stateText = byGpc ? t.gpcOptedOut : objection && p.status === 'none' ? t.notObjected : objection && off ? t.objected : (t.consentStatuses[p.status] ?? p.status);
          const stop = objection ? t.object : t.withdraw;
          const id = `purpose-${p.key.replace(/[^a-z0-9]/gi, '-')}`;
          return (
            <li key={p.key} class="purpose" data-purpose={p.key}>
              <h2 id={`${id}-title`}>{p.title}</h2>
              <p>{p.description}</p>
              <dl>
                <dt>{t.legalBasis}</dt>
                <dd>
                  {t.legalBases[p.legalBasis] ?? p.legalBasis} ({p.legalBasisArticle})
                </dd>
                {p.changeable && (
                  <>
                    <dt>{t.current}</dt>
                    <dd class="state" data-status={p.status}>
                      {stateText}
                    </dd>
                  </>
                )}
              </dl>
              {p.changeable ? (
                <div class="choices" role="group" aria-labelledby={`${id}-title`}>
                  <button type="button" class="choice" aria-pressed={on} disabled={busy === p.key} aria-label={`${t.grant}: ${p.title}`} onClick={() => void decide(p.key, p.title, 'granted', objection)}>
                    {t.grant}
                  </button>
                  <button
                    type="button"
                    class="choice"
                    aria-pressed={off}
                    disabled={busy === p.key}
                    aria-label={`${stop}: ${p.title}`}
                    onClick={() => void decide(p.key, p.title, 'withdrawn', objection)}
                  >
                    {stop}
                  </button>
                </div>
              ) : (
                <p class="fixed">{t.notChangeable}</p>
              )}
            </li>
          );
        })}
      </ul>
    </section>
  );
}

/** The label of a correctable field: the data map's description, else the category in the page's language, else fideslang's English name. */
function fieldLabel(f: RectifiableField, t: Messages): string {
  return f.description ?? t.fieldCategories[f.category] ?? f.categoryLabel;
}

function NewRequest({ t, config, heading, setNotice, fail, onCreated }: Ctx & { onCreated: () => void }) {
  const [jurisdiction, setJurisdiction] = useState(config.jurisdiction);
  const types = config.available[jurisdiction] ?? [];
  const [type, setType] = useState<string>(types[0] ?? 'access');
  const [fields, setFields] = useState<RectifiableField[] | null>(null);
  const [field, setField] = useState('');
  const [value, setValue] = useState('');
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    if (type === 'rectification' && fields === null) api.rectifiableFields().then((r) => setFields(r.fields)).catch(fail);
  }, [type]);
  const chosen = fields?.find((f) => f.field === field);
  const noFields = type === 'rectification' && fields !== null && fields.length === 0;
  // Two fields with one label (e.g. e-mail in two systems) are told apart by their system.
  const labels = (fields ?? []).map((f) => fieldLabel(f, t));
  const optionLabel = (f: RectifiableField, i: number) => (labels.filter((l) => l === labels[i]).length > 1 ? `${labels[i]} (${f.system})` : labels[i]!);

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    try {
      await api.createRequest({ type, jurisdiction, ...(type === 'rectification' ? { corrections: { [field]: value } } : {}) });
      onCreated();
    } catch (err) {
      if (err instanceof ApiError && err.status === 400) setNotice({ kind: 'error', text: t.error });
      else fail(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section aria-labelledby="new-title">
      <h1 id="new-title" tabIndex={-1} ref={heading}>
        {t.newRequestTitle}
      </h1>
      <p>{t.newRequestIntro}</p>
      <form onSubmit={(e) => void submit(e)}>
        {config.jurisdictions.length > 1 && (
          <>
            <label for="jurisdiction">{t.jurisdiction}</label>
            <select id="jurisdiction" value={jurisdiction} onChange={(e) => setJurisdiction(e.currentTarget.value)}>
              {config.jurisdictions.map((j) => (
                <option key={j} value={j}>
                  {j}
                </option>
              ))}
            </select>
          </>
        )}
        <fieldset>
          <legend>{t.requestType}</legend>
          {types.map((k) => {
            const [label, hint] = t.types[k] ?? [k, ''];
            return (
              <div class="option" key={k}>
                <input type="radio" id={`type-${k}`} name="type" value={k} checked={type === k} onChange={() => setType(k)} aria-describedby={`type-${k}-hint`} />
                <label for={`type-${k}`}>{label}</label>
                <span class="hint" id={`type-${k}-hint`}>
                  {hint}
                </span>
              </div>
            );
          })}
        </fieldset>
        {type === 'rectification' && noFields && <p id="correction-none">{t.noCorrectableFields}</p>}
        {type === 'rectification' && fields !== null && fields.length > 0 && (
          <>
            <label for="correction-field">{t.correctionField}</label>
            <select id="correction-field" required value={field} aria-describedby="correction-hint" onChange={(e) => setField(e.currentTarget.value)}>
              <option value="">{t.chooseField}</option>
              {fields.map((f, i) => (
                <option key={f.field} value={f.field}>
                  {optionLabel(f, i)}
                </option>
              ))}
            </select>
            <p class="hint" id="correction-hint">
              {t.correctionHint}
            </p>
            <label for="correction-value">{t.correctionValue}</label>
            <input
              id="correction-value"
              required
              type="text"
              inputMode={chosen?.category === 'user.contact.email' ? 'email' : chosen?.category === 'user.contact.phone_number' ? 'tel' : 'text'}
              autoComplete="off"
              value={value}
              onInput={(e) => setValue(e.currentTarget.value)}
            />
          </>
        )}
        <button type="submit" class="primary" disabled={busy || types.length === 0 || noFields || (type === 'rectification' && fields === null)}>
          {t.submitRequest}
        </button>
      </form>
    </section>
  );
}

function Requests({ t, lang, heading, fail }: Ctx) {
  const [requests, setRequests] = useState<RequestView[] | null>(null);
  const load = () => void api.requests().then((r) => setRequests(r.requests)).catch(fail);
  useEffect(load, []);

  const download = async (id: string) => {
    try {
      const link = await api.packageLink(id);
      window.location.assign(link.url);
    } catch (err) {
      fail(err);
    }
  };

  return (
    <section aria-labelledby="requests-title">
      <h1 id="requests-title" tabIndex={-1} ref={heading}>
        {t.requestsTitle}
      </h1>
      <button type="button" class="secondary" onClick={load}>
        {t.refresh}
      </button>
      {requests !== null && requests.length === 0 && <p>{t.noRequests}</p>}
      {requests !== null && requests.length > 0 && (
        <table class="requests">
          <caption>{t.requestsCaption}</caption>
          <thead>
            <tr>
              <th scope="col">{t.colType}</th>
              <th scope="col">{t.colReceived}</th>
              <th scope="col">{t.colStatus}</th>
              <th scope="col">{t.colDue}</th>
              <th scope="col">{t.colAction}</th>
            </tr>
          </thead>
          <tbody>
            {requests.map((r) => {
              const ready = (r.type === 'access' || r.type === 'portability') && (r.status === 'completed' || r.status === 'partially_completed');
              return (
                <tr key={r.id} data-request={r.id}>
                  <th scope="row">{t.types[r.type]?.[0] ?? r.type}</th>
                  <td>{formatDate(r.receivedAt, lang)}</td>
                  <td data-status={r.status}>{t.statuses[r.status] ?? r.status}</td>
                  <td>{formatDate(r.dueAt, lang)}</td>
                  <td>
                    {ready ? (
                      <button type="button" class="secondary" onClick={() => void download(r.id)}>
                        {t.download}
                      </button>
                    ) : (r.type === 'access' || r.type === 'portability') ? (
                      t.notReady
                    ) : (
                      '—'
                    )}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </section>
  );
}
