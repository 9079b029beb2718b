/** The banner's own words. Purpose titles and descriptions come from the server. */
export interface Strings {
  readonly title: string;
  readonly intro: string;
  readonly introOptOut: string;
  readonly acceptAll: string;
  readonly rejectAll: string;
  readonly preferences: string;
  readonly save: string;
  readonly close: string;
  readonly dialogTitle: string;
  readonly dialogIntro: string;
  readonly gpcApplied: string;
}

const en: Strings = {
  title: 'Your privacy choices',
  intro: 'We would like to use your data for the purposes below. Nothing optional happens until you choose. You can change your mind at any time.',
  introOptOut: 'We use your data for the purposes below. You can opt out of any of them, now or at any time.',
  acceptAll: 'Accept all',
  rejectAll: 'Reject all',
  preferences: 'Preferences',
  save: 'Save choices',
  close: 'Close',
  dialogTitle: 'Privacy preferences',
  dialogIntro: 'Turn each purpose on or off.',
  gpcApplied: 'Your browser sent a Global Privacy Control signal: we applied it, so sale, sharing and targeted advertising are off.',
};

const de: Strings = {
  title: 'Ihre Datenschutz-Einstellungen',
  intro: 'Wir möchten Ihre Daten für die unten genannten Zwecke verwenden. Optionales geschieht erst nach Ihrer Wahl. Sie können Ihre Entscheidung jederzeit ändern.',
  introOptOut: 'Wir verwenden Ihre Daten für die unten genannten Zwecke. Sie können jedem davon jetzt oder jederzeit widersprechen.',
  acceptAll: 'Alle akzeptieren',
  rejectAll: 'Alle ablehnen',
  preferences: 'Einstellungen',
  save: 'Auswahl speichern',
  close: 'Schließen',
  dialogTitle: 'Datenschutz-Einstellungen',
  dialogIntro: 'Schalten Sie jeden Zweck ein oder aus.',
  gpcApplied: 'Ihr Browser hat ein Global-Privacy-Control-Signal gesendet: Wir haben es angewendet, Verkauf, Weitergabe und zielgerichtete Werbung sind aus.',
};

const STRINGS: Record<string, Strings> = { en, de };

/** The strings for `lang` (`de`, `de-AT`, …); English when the language is not available. */
export function stringsFor(lang: string | null | undefined): { lang: string; strings: Strings } {
  const base = (lang ?? '').toLowerCase().split('-')[0] ?? '';
  return STRINGS[base] !== undefined ? { lang: base, strings: STRINGS[base] } : { lang: 'en', strings: en };
}
