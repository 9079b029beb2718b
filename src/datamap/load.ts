import { readFile } from 'node:fs/promises';
import { LineCounter, isNode, parseDocument } from 'yaml';
import type { z } from 'zod';
import { CustodianError } from '../core/index.js';
import { readablePath, sortIssues, type ManifestIssue, type RawIssue } from './issues.js';
import { manifestSchema, type Manifest } from './manifest.js';
import { validateManifest } from './validate.js';

/** Largest manifest accepted (a manifest of 5,000 tables with 50 columns each is ~15 MB of YAML). */
export const MAX_MANIFEST_BYTES = 32 * 1024 * 1024;

/** The result of reading a manifest: the manifest when it has no errors, and every issue (errors and warnings). */
export interface ManifestResult {
  readonly manifest?: Manifest;
  readonly issues: readonly ManifestIssue[];
}

/** A parsed YAML text: its document (for positions) and its value. */
export interface YamlSource {
  readonly input: unknown;
  /** Line and column of the deepest node that exists along `at` (a missing key points at its parent). */
  position(at: ReadonlyArray<string | number>): { line?: number; column?: number };
}

/**
 * Parses YAML for a reader that reports positions: the value and a position finder, or the syntax errors
 * (also unresolved aliases and alias bombs, which surface only when the value is built) as issues.
 */
export function readYaml(text: string, file?: string): YamlSource | { readonly issues: ManifestIssue[] } {
  const withFile = (i: ManifestIssue): ManifestIssue => (file === undefined ? i : { ...i, file });
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    return {
      issues: doc.errors.map((e) => {
        const pos = lineCounter.linePos(e.pos[0]);
        return withFile({ severity: 'error', path: '(yaml)', message: e.message.split('\n')[0]!, line: pos.line, column: pos.col });
      }),
    };
  }
  try {
    const input: unknown = doc.toJS({ maxAliasCount: 100 });
    return { input, position: (at) => positionIn(doc, lineCounter, at) };
  } catch (err) {
    return { issues: [withFile({ severity: 'error', path: '(yaml)', message: (err as Error).message.split('\n')[0]! })] };
  }
}

/** Parses and validates manifest YAML (JSON is YAML too); issues carry line and column. Never throws on bad input. */
export function parseManifest(text: string, options: { file?: string } = {}): ManifestResult {
  const file = options.file;
  if (text.length > MAX_MANIFEST_BYTES) return { issues: [{ severity: 'error', path: '(manifest)', message: `the manifest is larger than ${MAX_MANIFEST_BYTES} bytes`, ...(file ? { file } : {}) }] };
  const source = readYaml(text, file);
  if ('issues' in source) return source;
  const { input } = source;
  return check(input, (raw) => ({ severity: raw.severity, path: readablePath(input, raw.at), message: raw.message, ...source.position(raw.at), ...(file === undefined ? {} : { file }) }));
}

function positionIn(doc: ReturnType<typeof parseDocument>, lineCounter: LineCounter, at: ReadonlyArray<string | number>): { line?: number; column?: number } {
  for (let n = at.length; n >= 0; n--) {
    const node: unknown = n === 0 ? doc.contents : doc.getIn(at.slice(0, n), true);
    if (isNode(node) && node.range) {
      const pos = lineCounter.linePos(node.range[0]);
      return { line: pos.line, column: pos.col };
    }
  }
  return {};
}

/**
 * Renders issues found later (e.g. by introspecting the systems) against the manifest text they refer to:
 * readable paths, and file, line and column.
 */
export function renderIssues(text: string, raws: readonly RawIssue[], options: { file?: string } = {}): ManifestIssue[] {
  const source = readYaml(text, options.file);
  if ('issues' in source) return [...source.issues];
  return sortIssues(raws.map((raw) => ({ severity: raw.severity, path: readablePath(source.input, raw.at), message: raw.message, ...source.position(raw.at), ...(options.file !== undefined ? { file: options.file } : {}) })));
}

/** Validates a manifest given as a JS value (the HTTP API's JSON body); issues carry paths only. */
export function checkManifestValue(input: unknown): ManifestResult {
  return check(input, (raw) => ({ severity: raw.severity, path: readablePath(input, raw.at), message: raw.message }));
}

/** Reads and validates a manifest file; a missing or unreadable file is an issue, not a throw. */
export async function loadManifestFile(path: string): Promise<ManifestResult> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    return { issues: [{ severity: 'error', path: '(file)', file: path, message: code === 'ENOENT' ? 'no such file' : `cannot read the file (${code})` }] };
  }
  return parseManifest(text, { file: path });
}

function check(input: unknown, render: (raw: RawIssue) => ManifestIssue): ManifestResult {
  const parsed = manifestSchema.safeParse(input);
  if (!parsed.success) {
    const schemaIssues = zodIssues(parsed.error);
    return { issues: sortIssues([...schemaIssues, ...semanticDespite(input, schemaIssues)].map(render)) };
  }
  const issues = sortIssues(validateManifest(parsed.data).map(render));
  return issues.some((i) => i.severity === 'error') ? { issues } : { manifest: parsed.data, issues };
}

/**
 * So that one run reports every error, the semantic checks also run when the schema failed: on a copy with
 * each offending property removed (up to 3 rounds). Their findings at or around a removed property are
 * dropped (a removed invalid `legalBasis` must not also read as "no legal basis"). When removal cannot make
 * the copy valid (a required property is missing, an array element is malformed), schema issues stand alone.
 */
function semanticDespite(input: unknown, schemaIssues: readonly RawIssue[]): RawIssue[] {
  if (input === null || typeof input !== 'object') return [];
  const copy = structuredClone(input) as Record<string, unknown>;
  const removed: Array<ReadonlyArray<string | number>> = [];
  let issues = schemaIssues;
  for (let round = 0; round < 3; round++) {
    for (const i of issues) {
      const last = i.at.at(-1);
      if (typeof last !== 'string') return [];
      let parent: unknown = copy;
      for (const step of i.at.slice(0, -1)) parent = parent !== null && typeof parent === 'object' ? (parent as Record<string | number, unknown>)[step] : undefined;
      if (parent === null || typeof parent !== 'object' || !(last in parent)) return [];
      delete (parent as Record<string, unknown>)[last];
      removed.push(i.at);
    }
    const again = manifestSchema.safeParse(copy);
    if (again.success) {
      const related = (a: ReadonlyArray<string | number>, b: ReadonlyArray<string | number>) => a.slice(0, Math.min(a.length, b.length)).every((s, k) => s === b[k]);
      return validateManifest(again.data).filter((i) => !removed.some((r) => related(r, i.at) && (i.at.length >= r.length - 1)));
    }
    issues = zodIssues(again.error);
  }
  return [];
}

function zodIssues(error: z.ZodError): RawIssue[] {
  const out: RawIssue[] = [];
  const walk = (issues: readonly z.core.$ZodIssue[], prefix: ReadonlyArray<string | number>) => {
    for (const i of issues) {
      const at = [...prefix, ...i.path.map((p) => (typeof p === 'symbol' ? String(p) : p))];
      if (i.code === 'invalid_union' && i.errors.length > 0) {
        // Report the alternative that got furthest, not "invalid input".
        const best = [...i.errors].sort((a, b) => depth(b) - depth(a))[0]!;
        walk(best, at);
        continue;
      }
      if (i.code === 'unrecognized_keys') {
        for (const k of i.keys) out.push({ severity: 'error', at: [...at, k], message: `unknown key ${k}` });
        continue;
      }
      out.push({ severity: 'error', at, message: i.message });
    }
  };
  walk(error.issues, []);
  return out;
}

function depth(issues: readonly z.core.$ZodIssue[]): number {
  return Math.max(0, ...issues.map((i) => i.path.length + (i.code === 'invalid_type' ? 0 : 1)));
}

/**
 * Substitutes `${VAR}` references in a connection string from `env`. An unset variable is an error naming
 * the variable (never its value); values are inserted URL-encoded where they sit in the user-info part.
 */
export function resolveConnection(connection: string, env: Readonly<Record<string, string | undefined>>): string {
  const missing: string[] = [];
  const credentialsEnd = connection.indexOf('@');
  const out = connection.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_m, name: string, offset: number) => {
    const value = env[name];
    if (value === undefined) {
      missing.push(name);
      return '';
    }
    // In user:password@ the value must be percent-encoded to survive URL parsing.
    return credentialsEnd > offset && /^[a-z][a-z0-9+.-]*:\/\//i.test(connection) ? encodeURIComponent(value) : value;
  });
  if (missing.length > 0) {
    throw new CustodianError('CST_ERR_DATAMAP_INVALID', `the connection refers to unset environment variable${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`, {
      details: { issues: missing.map((name) => ({ severity: 'error', path: 'connection', message: `environment variable ${name} is not set` })) },
    });
  }
  return out;
}

/** A connection string with any password replaced by `***`, for messages and logs. */
export function redactConnection(connection: string): string {
  return connection.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:@/?#]*:)[^@/?#]*@/i, '$1***@').replace(/([?&](?:password|passwd|pwd|secret|token|api[_-]?key)=)[^&]*/gi, '$1***');
}
