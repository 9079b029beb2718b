// C0/C1 control characters (ESC starts terminal escape sequences) and line breaks inside one value.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001F\u007F-\u009F\u2028\u2029]/g;

/** Manifest text made safe for one line of terminal output: control characters become U+FFFD. */
export function plain(text: string): string {
  return text.replace(CONTROL, '\uFFFD');
}
