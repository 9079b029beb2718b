import type { Strings } from './strings.js';
import type { Experience } from './types.js';

const CSS = `
.cst-banner,.cst-dialog{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1b1b;background:#fff;box-sizing:border-box}
.cst-banner{position:fixed;left:0;right:0;bottom:0;z-index:2147483646;padding:16px 20px;border-top:1px solid #bbb;box-shadow:0 -2px 12px rgba(0,0,0,.15)}
.cst-banner h2,.cst-dialog h2{font-size:17px;margin:0 0 6px}
.cst-banner p,.cst-dialog p{margin:0 0 10px}
.cst-gpc{padding:6px 10px;border-left:4px solid #1a73e8;background:#eef4fd}
.cst-actions{display:flex;flex-wrap:wrap;gap:8px}
.cst-btn{font:inherit;font-weight:600;min-width:150px;padding:9px 16px;border:2px solid #1b1b1b;border-radius:4px;background:#1b1b1b;color:#fff;cursor:pointer}
.cst-btn.cst-secondary{background:#fff;color:#1b1b1b}
.cst-banner :focus-visible,.cst-dialog :focus-visible{outline:3px solid #1a73e8;outline-offset:2px}
.cst-overlay{position:fixed;inset:0;z-index:2147483647;background:rgba(0,0,0,.5);display:flex;align-items:center;justify-content:center}
.cst-dialog{max-width:560px;width:calc(100% - 32px);max-height:calc(100% - 32px);overflow:auto;padding:20px;border-radius:6px}
.cst-purpose{display:flex;gap:12px;align-items:flex-start;padding:10px 0;border-top:1px solid #ddd}
.cst-purpose input{width:22px;height:22px;margin:2px 0 0;flex:none}
.cst-purpose label{font-weight:600}
.cst-purpose small{display:block;color:#444}
`;

let styled = false;
let seq = 0;

function el<K extends keyof HTMLElementTagNameMap>(doc: Document, tag: K, attrs: Record<string, string> = {}, text?: string): HTMLElementTagNameMap[K] {
  const e = doc.createElement(tag);
  for (const k of Object.keys(attrs)) e.setAttribute(k, attrs[k]!);
  if (text !== undefined) e.textContent = text;
  return e;
}

function style(doc: Document): void {
  if (styled) return;
  styled = true;
  doc.head.appendChild(el(doc, 'style', { 'data-custodian': '' }, CSS));
}

function button(doc: Document, label: string, action: string, onClick: () => void, secondary = false): HTMLButtonElement {
  // Accept all and Reject all share one class: equal prominence (EDPB Guidelines 03/2022; CNIL délibération 2020-092).
  const b = el(doc, 'button', { type: 'button', class: secondary ? 'cst-btn cst-secondary' : 'cst-btn', 'data-cst-action': action }, label);
  b.addEventListener('click', onClick);
  return b;
}

/** What the banner and the dialog can do. */
export interface BannerActions {
  readonly acceptAll: () => void;
  readonly rejectAll: () => void;
  readonly save: (choices: Record<string, boolean>) => void;
}

/** The banner on the page; {@link BannerHandle.fill} completes it once the experience is known. */
export interface BannerHandle {
  readonly element: HTMLElement;
  fill(exp: Experience, gpcApplied: boolean): void;
}

/**
 * The banner: a labelled region at the start of the body (first in tab order) with Reject all and Accept all of
 * equal prominence and Preferences. It takes focus when shown, so the keyboard reaches its buttons at once. It is
 * shown before the experience arrives (opt-in wording, the strictest) and filled in when it does.
 */
export function showBanner(doc: Document, s: Strings, actions: BannerActions, openPreferences: () => void): BannerHandle {
  style(doc);
  const id = `cst-${++seq}`;
  const region = el(doc, 'div', { class: 'cst-banner', role: 'region', 'aria-labelledby': `${id}-t`, 'aria-describedby': `${id}-d`, tabindex: '-1', 'data-custodian-banner': '' });
  region.appendChild(el(doc, 'h2', { id: `${id}-t` }, s.title));
  const intro = el(doc, 'p', { id: `${id}-d` }, s.intro);
  region.appendChild(intro);
  const actionsRow = el(doc, 'div', { class: 'cst-actions' });
  actionsRow.append(button(doc, s.rejectAll, 'reject', actions.rejectAll), button(doc, s.acceptAll, 'accept', actions.acceptAll), button(doc, s.preferences, 'preferences', openPreferences, true));
  region.appendChild(actionsRow);
  doc.body.insertBefore(region, doc.body.firstChild);
  region.focus({ preventScroll: true });
  return {
    element: region,
    fill(exp, gpcApplied) {
      if (exp.type === 'opt_out') intro.textContent = s.introOptOut;
      if (gpcApplied && region.querySelector('[data-custodian-gpc]') === null) {
        intro.after(el(doc, 'p', { class: 'cst-gpc', role: 'status', 'data-custodian-gpc': '' }, s.gpcApplied));
      }
      region.setAttribute('data-custodian-ready', '');
    },
  };
}

/**
 * The preferences dialog: modal, labelled, one switch per purpose, focus trapped inside, Esc closes, focus goes
 * back to where it was when it closes.
 */
export function showPreferences(doc: Document, s: Strings, exp: Experience, current: Readonly<Record<string, boolean>>, gpcApplied: boolean, actions: BannerActions, onClose: () => void): HTMLElement {
  style(doc);
  const id = `cst-${++seq}`;
  const opener = doc.activeElement as HTMLElement | null;
  const overlay = el(doc, 'div', { class: 'cst-overlay', 'data-custodian-preferences': '' });
  const dialog = el(doc, 'div', { class: 'cst-dialog', role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': `${id}-t`, 'aria-describedby': `${id}-d` });
  dialog.appendChild(el(doc, 'h2', { id: `${id}-t` }, s.dialogTitle));
  dialog.appendChild(el(doc, 'p', { id: `${id}-d` }, s.dialogIntro));
  if (gpcApplied) dialog.appendChild(el(doc, 'p', { class: 'cst-gpc', 'data-custodian-gpc': '' }, s.gpcApplied));
  const inputs: HTMLInputElement[] = [];
  exp.purposes.forEach((p, n) => {
    const row = el(doc, 'div', { class: 'cst-purpose' });
    const input = el(doc, 'input', { type: 'checkbox', role: 'switch', id: `${id}-p${n}`, 'aria-describedby': `${id}-p${n}-d`, 'data-purpose': p.key });
    input.checked = current[p.key] === true;
    inputs.push(input);
    const text = el(doc, 'div');
    text.append(el(doc, 'label', { for: input.id }, p.title), el(doc, 'small', { id: `${id}-p${n}-d` }, p.description));
    row.append(input, text);
    dialog.appendChild(row);
  });
  const close = (then?: () => void) => {
    overlay.remove();
    doc.removeEventListener('keydown', onKey, true);
    onClose();
    then?.();
    if (opener !== null && opener.isConnected) opener.focus();
  };
  const choices = () => {
    const c: Record<string, boolean> = {};
    for (const i of inputs) c[i.getAttribute('data-purpose')!] = i.checked;
    return c;
  };
  const row = el(doc, 'div', { class: 'cst-actions' });
  row.append(
    button(doc, s.rejectAll, 'reject', () => close(actions.rejectAll)),
    button(doc, s.acceptAll, 'accept', () => close(actions.acceptAll)),
    button(doc, s.save, 'save', () => {
      const c = choices();
      close(() => actions.save(c));
    }, true),
    button(doc, s.close, 'close', () => close(), true),
  );
  dialog.appendChild(row);
  const focusable = () => Array.from(dialog.querySelectorAll<HTMLElement>('input,button'));
  const onKey = (e: KeyboardEvent) => {
    if (e.key === 'Escape') {
      e.preventDefault();
      close();
    } else if (e.key === 'Tab') {
      const f = focusable();
      const first = f[0]!;
      const last = f[f.length - 1]!;
      const active = doc.activeElement;
      if (!dialog.contains(active)) {
        e.preventDefault();
        first.focus();
      } else if (e.shiftKey && active === first) {
        e.preventDefault();
        last.focus();
      } else if (!e.shiftKey && active === last) {
        e.preventDefault();
        first.focus();
      }
    }
  };
  doc.addEventListener('keydown', onKey, true);
  overlay.appendChild(dialog);
  doc.body.appendChild(overlay);
  (inputs[0] ?? focusable()[0])?.focus();
  return overlay;
}
