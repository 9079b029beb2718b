/** Attribute naming the purpose(s) a blocked script needs, space-separated (all must be granted). */
export const PURPOSE_ATTRIBUTE = 'data-custodian-purpose';

/**
 * Activates `<script type="text/plain" data-custodian-purpose="…">` elements whose purposes are all granted:
 * each is replaced by a real script element with the same attributes and source (inline or `src`). Scripts
 * of purposes not granted stay inert. Returns how many were activated. O(scripts on the page).
 */
export function activateScripts(doc: Document, granted: (purpose: string) => boolean): number {
  let count = 0;
  const blocked = doc.querySelectorAll<HTMLScriptElement>(`script[type="text/plain"][${PURPOSE_ATTRIBUTE}]`);
  blocked.forEach((old) => {
    const purposes = (old.getAttribute(PURPOSE_ATTRIBUTE) ?? '').split(/\s+/).filter(Boolean);
    if (purposes.length === 0 || !purposes.every(granted)) return;
    const script = doc.createElement('script');
    for (const attr of Array.from(old.attributes)) {
      if (attr.name !== 'type') script.setAttribute(attr.name, attr.value);
    }
    const type = old.getAttribute('data-type');
    if (type !== null) script.type = type;
    script.setAttribute('data-custodian-activated', '');
    if (!old.src) script.text = old.text;
    old.replaceWith(script);
    count++;
  });
  return count;
}
