import { readChoice, writeChoice } from './cookie.js';
import { SIGNALS, pushConsent, signalsFor } from './consent-mode.js';
import { PURPOSE_ATTRIBUTE, activateScripts } from './script-blocker.js';
import { stringsFor } from './strings.js';
import type { ConsentChoice, ConsentModeSignal, Experience } from './types.js';
import { showBanner, showPreferences, type BannerActions, type BannerHandle } from './ui.js';

// Custodian consent banner: <script src="https://custodian.example.com/banner.js" data-custodian-url="https://custodian.example.com">.
// No dependencies; see docs/banner.md.

type Listener = (choice: ConsentChoice) => void;
interface CustodianGlobal {
  consent: { get(): ConsentChoice | null; onChange(fn: Listener): () => void; open(): void };
}
type Win = Window & { custodian?: CustodianGlobal; dataLayer?: unknown[] };

const MONTH_MS = 30.44 * 24 * 3600 * 1000;
const DEFAULT_MONTHS = 13;

(function main(win: Win, doc: Document) {
  if (win.custodian !== undefined) return; // loaded twice
  const perf = win.performance;
  perf?.mark?.('custodian:start');
  const tag = (doc.currentScript as HTMLScriptElement | null) ?? doc.querySelector<HTMLScriptElement>('script[data-custodian-url]');
  const base = new URL(tag?.getAttribute('data-custodian-url') || '/', win.location.href).href.replace(/\/+$/, '');
  const forced = tag?.getAttribute('data-jurisdiction');
  const { strings } = stringsFor(tag?.getAttribute('data-lang') || doc.documentElement.lang || win.navigator.language);
  const gpc = (win.navigator as Navigator & { globalPrivacyControl?: boolean }).globalPrivacyControl === true;
  const secure = win.location.protocol === 'https:';

  let choice = readChoice(doc);
  if (choice !== null && choice.expiresAt <= Date.now()) choice = null;
  let experience: Experience | undefined;
  let banner: BannerHandle | undefined;
  let pendingAction: (() => void) | undefined;
  let dialogOpen = false;
  let openWhenReady = false;
  let focusBefore: Element | null = null;
  const listeners: Listener[] = [];

  const granted = (purposes: Readonly<Record<string, boolean>>) => (p: string) => purposes[p] === true;
  let current: Readonly<Record<string, boolean>> = choice?.purposes ?? {};
  const apply = (purposes: Readonly<Record<string, boolean>>) => {
    current = purposes;
    activateScripts(doc, granted(purposes));
  };

  // Consent Mode default, as early as possible: the stored choice, or everything denied until the visitor decides.
  const denied = {} as Record<ConsentModeSignal, boolean>;
  for (const s of SIGNALS) denied[s] = false;
  pushConsent(win, 'default', choice?.consentMode ?? denied, choice === null ? 500 : undefined);
  const whenBody = (fn: () => void) => (doc.body !== null ? fn() : doc.addEventListener('DOMContentLoaded', fn));
  if (choice !== null) {
    const purposes = choice.purposes;
    whenBody(() => apply(purposes));
  }
  // Blocked scripts added to the page later are activated too when their purposes are granted.
  if (typeof MutationObserver === 'function') {
    new MutationObserver((records) => {
      if (records.some((r) => Array.from(r.addedNodes).some((n) => n instanceof HTMLScriptElement && n.hasAttribute(PURPOSE_ATTRIBUTE)))) activateScripts(doc, granted(current));
    }).observe(doc.documentElement, { childList: true, subtree: true });
  }

  const gpcApplies = (exp: Experience) => gpc && exp.purposes.some((p) => p.gpcOptOut);
  const newAnonymousId = () => {
    const b = win.crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6]! & 0x0f) | 0x40;
    b[8] = (b[8]! & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
    return `anon-${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  };
  const uuid = () => newAnonymousId().slice(5);

  const submit = (c: ConsentChoice) => {
    if (c.pendingSubmission === undefined) return;
    const body = JSON.stringify({
      anonymousId: c.anonymousId,
      jurisdiction: c.jurisdiction,
      noticeVersion: c.noticeVersion,
      choices: c.purposes,
      // Scheme, host and path only: query strings and fragments often carry personal data.
      pageUrl: win.location.origin + win.location.pathname,
      gpc,
      submissionId: c.pendingSubmission,
    });
    win
      .fetch(`${base}/v1/banner/consent`, { method: 'POST', headers: { 'content-type': 'application/json' }, body, credentials: 'omit', keepalive: true })
      .then((r) => {
        if (!r.ok) return;
        // Confirmed by the ledger: drop the pending mark unless a newer choice replaced this one meanwhile.
        if (choice !== null && choice.pendingSubmission === c.pendingSubmission) {
          const { pendingSubmission: _done, ...confirmed } = choice;
          choice = confirmed;
          writeChoice(doc, choice, secure);
        }
      })
      .catch(() => undefined); // offline or blocked: resent on the next page load
  };

  const decide = (purposes: Record<string, boolean>) => {
    const exp = experience;
    if (exp === undefined) return;
    const now = Date.now();
    const months = exp.purposes.reduce((m, p) => (p.expiryMonths !== null && p.expiryMonths < m ? p.expiryMonths : m), DEFAULT_MONTHS);
    choice = {
      noticeVersion: exp.noticeVersion,
      anonymousId: choice?.anonymousId ?? newAnonymousId(),
      jurisdiction: exp.jurisdiction,
      purposes,
      consentMode: signalsFor(exp, purposes),
      decidedAt: now,
      expiresAt: now + months * MONTH_MS,
      gpcApplied: gpcApplies(exp),
      pendingSubmission: uuid(),
    };
    writeChoice(doc, choice, secure);
    hideBanner();
    pushConsent(win, 'update', choice.consentMode);
    apply(purposes);
    const c = choice;
    for (const fn of listeners.slice()) {
      try {
        fn(c);
      } catch {
        // a listener's fault is the site's, never the banner's
      }
    }
    submit(c);
  };

  const all = (exp: Experience, value: boolean) => {
    const out: Record<string, boolean> = {};
    // With GPC, "Accept all" leaves sale, sharing and targeted advertising off; the visitor can still turn them on one by one.
    for (const p of exp.purposes) out[p.key] = value && !(gpc && p.gpcOptOut);
    return out;
  };
  const defaults = (exp: Experience) => {
    const out: Record<string, boolean> = {};
    for (const p of exp.purposes) out[p.key] = p.defaultGranted && !(gpc && p.gpcOptOut);
    return out;
  };
  // A button pressed before the experience arrived takes effect when it does.
  const whenReady = (fn: (exp: Experience) => void) => (experience !== undefined ? fn(experience) : (pendingAction = () => fn(experience!)));
  const actions: BannerActions = {
    acceptAll: () => whenReady((exp) => decide(all(exp, true))),
    rejectAll: () => whenReady((exp) => decide(all(exp, false))),
    save: (c) => decide(c),
  };

  const hideBanner = () => {
    if (banner === undefined) return;
    // Focus was in the banner, or on nothing (the dialog that held it is gone): give it back.
    const active = doc.activeElement;
    const hadFocus = active === null || active === doc.body || banner.element.contains(active);
    banner.element.remove();
    banner = undefined;
    if (hadFocus && focusBefore instanceof HTMLElement && focusBefore.isConnected) focusBefore.focus();
  };
  const openPreferences = () => {
    const exp = experience;
    if (exp === undefined) {
      openWhenReady = true;
      return;
    }
    if (dialogOpen) return;
    dialogOpen = true;
    const shown = choice !== null && choice.noticeVersion === exp.noticeVersion ? choice.purposes : defaults(exp);
    whenBody(() => showPreferences(doc, strings, exp, shown, gpcApplies(exp), actions, () => (dialogOpen = false)));
  };

  win.custodian = {
    consent: {
      get: () => choice,
      onChange: (fn) => {
        listeners.push(fn);
        return () => {
          const i = listeners.indexOf(fn);
          if (i >= 0) listeners.splice(i, 1);
        };
      },
      open: openPreferences,
    },
  };

  const render = () => {
    if (banner !== undefined) return;
    focusBefore = doc.activeElement;
    banner = showBanner(doc, strings, actions, openPreferences);
    perf?.mark?.('custodian:render');
  };
  // No stored choice: the banner will be needed, so it is shown at once and completed when the experience arrives.
  if (choice === null) whenBody(render);

  const query = forced ? `?jurisdiction=${encodeURIComponent(forced)}` : '';
  win
    .fetch(`${base}/v1/banner/experience${query}`, { credentials: 'omit' })
    .then((r) => (r.ok ? (r.json() as Promise<Experience>) : Promise.reject(new Error(String(r.status)))))
    .then((exp) => {
      experience = exp;
      if (exp.purposes.length === 0) {
        hideBanner(); // nothing to ask here
      } else if (choice !== null && choice.noticeVersion === exp.noticeVersion) {
        submit(choice); // resend a choice the ledger never confirmed
      } else {
        // No choice for this notice: the jurisdiction's defaults (opt-out regimes start granted, GPC aside).
        const d = defaults(exp);
        // A choice made on an older notice no longer counts: back to the defaults until the visitor chooses again.
        if (exp.type === 'opt_out' || choice !== null) pushConsent(win, 'update', signalsFor(exp, d));
        whenBody(() => {
          apply(d);
          render();
          banner?.fill(exp, gpcApplies(exp));
          perf?.mark?.('custodian:ready');
          const act = pendingAction;
          pendingAction = undefined;
          act?.();
        });
      }
      if (openWhenReady) {
        openWhenReady = false;
        openPreferences();
      }
    })
    .catch(() => hideBanner()); // Custodian unreachable: nothing optional runs, and no banner
})(window, document);
