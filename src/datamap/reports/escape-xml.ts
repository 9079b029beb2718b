// XML 1.0 allows tab, LF, CR and U+0020 upwards except surrogates (handled by the manifest's well-formed-text
// check) and U+FFFE/U+FFFF; other control characters make a document unparseable, so they become U+FFFD.
// eslint-disable-next-line no-control-regex
const NOT_XML_CHAR = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g;

const ENTITIES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/**
 * Escapes text for HTML and XML, in element content and in quoted attribute values alike. Every piece of
 * manifest text goes through it: reports never inject raw manifest text into markup.
 */
export function escapeXml(text: string): string {
  return text.replace(NOT_XML_CHAR, '\uFFFD').replace(/[&<>"']/g, (c) => ENTITIES[c] ?? c);
}
