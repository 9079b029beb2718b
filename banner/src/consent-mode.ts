import type { ConsentModeSignal, Experience } from './types.js';

/** The four Consent Mode v2 signals, in a fixed order. */
export const SIGNALS: readonly ConsentModeSignal[] = ['ad_storage', 'analytics_storage', 'ad_user_data', 'ad_personalization'];

type Signals = Record<ConsentModeSignal, boolean>;

/**
 * Consent Mode signals from purpose choices: a signal is granted when at least one offered purpose falls under
 * one of its prefixes (the key equals the prefix or starts with `prefix.`) and every such purpose is granted.
 */
export function signalsFor(experience: Experience, granted: Readonly<Record<string, boolean>>): Signals {
  const out = {} as Signals;
  for (const signal of SIGNALS) {
    const prefixes = experience.consentMode[signal] ?? [];
    const keys = experience.purposes.map((p) => p.key).filter((k) => prefixes.some((x) => k === x || k.startsWith(`${x}.`)));
    out[signal] = keys.length > 0 && keys.every((k) => granted[k] === true);
  }
  return out;
}

/** Pushes `gtag('consent', command, …)` onto `window.dataLayer`, as gtag.js itself does (an Arguments object). */
export function pushConsent(win: Window & { dataLayer?: unknown[] }, command: 'default' | 'update', signals: Signals, waitForUpdate?: number): void {
  const params: Record<string, string | number> = {};
  for (const s of SIGNALS) params[s] = signals[s] ? 'granted' : 'denied';
  if (waitForUpdate !== undefined) params.wait_for_update = waitForUpdate;
  const layer = (win.dataLayer = win.dataLayer ?? []);
  // gtag.js reads Arguments objects from the dataLayer, not arrays.
  (function gtag(..._args: unknown[]) {
    // eslint-disable-next-line prefer-rest-params
    layer.push(arguments);
  })('consent', command, params);
}
