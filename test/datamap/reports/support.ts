import type { Manifest } from '../../../src/datamap/manifest.js';

/* Test helpers of the report tests: a manifest-path resolver, an RFC 4180 parser and an XML well-formedness check. */

/**
 * Resolves a report's manifest path (`systems[crm].datasets[crm_db].collections[orders].fields[id]`,
 * `systems[hr].recipients[1]`) to the manifest element it names; undefined when it names nothing.
 */
export function resolveManifestPath(manifest: Manifest, path: string): unknown {
  const step = /\.?([A-Za-z]+)(?:\[([^\]]*)\])?/y;
  let node: unknown = manifest;
  let at = 0;
  while (at < path.length) {
    step.lastIndex = at;
    const m = step.exec(path);
    if (m === null) return undefined;
    at = step.lastIndex;
    node = (node as Record<string, unknown> | undefined)?.[m[1]!];
    const sel = m[2];
    if (sel === undefined) continue;
    if (!Array.isArray(node)) return undefined;
    const list = node as Array<{ key?: string; name?: string }>;
    node = /^\d+$/.test(sel) ? list[Number(sel)] : list.find((e) => e.key === sel || e.name === sel);
  }
  return node;
}

/** A strict RFC 4180 parser: CRLF record ends, quoted fields with doubled quotes; throws on malformed input. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let i = 0;
  const n = text.length;
  while (i < n) {
    let field = '';
    if (text[i] === '"') {
      i++;
      for (;;) {
        if (i >= n) throw new Error('unterminated quoted field');
        if (text[i] === '"') {
          if (text[i + 1] === '"') {
            field += '"';
            i += 2;
          } else {
            i++;
            break;
          }
        } else field += text[i++];
      }
    } else {
      while (i < n && text[i] !== ',' && text[i] !== '\r' && text[i] !== '\n') {
        if (text[i] === '"') throw new Error(`bare quote at ${i}`);
        field += text[i++];
      }
    }
    row.push(field);
    if (text[i] === ',') {
      i++;
      continue;
    }
    if (text.startsWith('\r\n', i)) {
      i += 2;
      rows.push(row);
      row = [];
      continue;
    }
    throw new Error(`expected , or CRLF at ${i}`);
  }
  if (row.length > 0) throw new Error('last record without CRLF');
  return rows;
}

/**
 * Checks that `text` is a well-formed XML document (prolog, one root element, balanced tags, quoted
 * attributes, only the five predefined or numeric entities, no `<` or bare `&` in text or attribute values)
 * and returns the root element's name and the element names in document order.
 */
export function checkXml(text: string): { root: string; elements: string[] } {
  let i = 0;
  const stack: string[] = [];
  const elements: string[] = [];
  let root: string | undefined;
  const fail = (why: string): never => {
    throw new Error(`${why} at ${i}: ${JSON.stringify(text.slice(i, i + 40))}`);
  };
  const checkText = (s: string) => {
    if (s.includes('<')) fail('< in text');
    for (let k = s.indexOf('&'); k >= 0; k = s.indexOf('&', k + 1)) {
      if (!/^&(?:amp|lt|gt|quot|apos|#\d+|#x[0-9A-Fa-f]+);/.test(s.slice(k))) fail('bare &');
    }
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u0008\u000B\u000C\u000E-\u001F]/.test(s)) fail('control character');
  };
  if (text.startsWith('<?xml')) {
    i = text.indexOf('?>') + 2;
    if (i < 2) fail('unterminated prolog');
  }
  while (i < text.length) {
    const lt = text.indexOf('<', i);
    const chunk = lt < 0 ? text.slice(i) : text.slice(i, lt);
    if (stack.length === 0 && chunk.trim() !== '') fail('text outside the root');
    checkText(chunk);
    if (lt < 0) break;
    i = lt;
    if (text.startsWith('<!--', i)) {
      const end = text.indexOf('-->', i);
      if (end < 0) fail('unterminated comment');
      i = end + 3;
      continue;
    }
    const close = /^<\/([A-Za-z_][\w.-]*)\s*>/.exec(text.slice(i));
    if (close !== null) {
      if (stack.pop() !== close[1]) fail(`mismatched </${close[1]}>`);
      i += close[0].length;
      continue;
    }
    const open = /^<([A-Za-z_][\w.:-]*)((?:\s+[A-Za-z_][\w.:-]*\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*(\/?)>/.exec(text.slice(i));
    if (open === null) fail('malformed tag');
    const [whole, name, attrs, selfClosing] = open!;
    const seen = new Set<string>();
    for (const a of attrs!.matchAll(/([A-Za-z_][\w.:-]*)\s*=\s*(?:"([^"]*)"|'([^']*)')/g)) {
      if (seen.has(a[1]!)) fail(`duplicate attribute ${a[1]}`);
      seen.add(a[1]!);
      checkText(a[2] ?? a[3] ?? '');
    }
    if (stack.length === 0) {
      if (root !== undefined) fail('second root element');
      root = name!;
    }
    elements.push(name!);
    if (selfClosing !== '/') stack.push(name!);
    i += whole.length;
  }
  if (stack.length > 0) throw new Error(`unclosed <${stack.join('>, <')}>`);
  if (root === undefined) throw new Error('no root element');
  return { root, elements };
}
