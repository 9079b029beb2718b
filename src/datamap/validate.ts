import { adequacyOf, closestTaxonomyKeys, isDataCategory, isDataSubject, isDataUse, isSpecialCategory, parseRetentionPeriod } from '../core/index.js';
import type { Collection, Field, Manifest } from './manifest.js';
import type { RawIssue } from './issues.js';

/** What the validator learns about a table when the system's connection can be introspected. */
export interface IntrospectedTable {
  readonly name: string;
  readonly columns: ReadonlyArray<{ readonly name: string; readonly nullable: boolean; readonly primaryKey: boolean; readonly indexed: boolean }>;
}

type Path = ReadonlyArray<string | number>;

/**
 * Checks what the schema cannot: unique keys, taxonomy keys, references, identity index hints, erasure
 * strategies, purposes and their legal bases, transfers, cycles that make an erasure order impossible,
 * and secrets in connections. Returns every problem found, never only the first.
 */
export function validateManifest(m: Manifest): RawIssue[] {
  const issues: RawIssue[] = [];
  const error = (at: Path, message: string) => issues.push({ severity: 'error', at, message });
  const warning = (at: Path, message: string) => issues.push({ severity: 'warning', at, message });

  const taxonomy = (at: Path, keyText: string, kind: 'data_category' | 'data_use' | 'data_subject') => {
    const ok = kind === 'data_category' ? isDataCategory(keyText) : kind === 'data_use' ? isDataUse(keyText) : isDataSubject(keyText);
    if (ok) return;
    const near = closestTaxonomyKeys(keyText, kind, 3);
    error(at, `unknown ${kind.replace('_', ' ')} ${keyText} in the fideslang taxonomy${near.length > 0 ? `; did you mean ${near.join(', ')}?` : ''}`);
  };

  // Purposes.
  const purposeKeys = new Set<string>();
  m.purposes.forEach((p, i) => {
    const at = ['purposes', i];
    if (purposeKeys.has(p.key)) error([...at, 'key'], `purpose ${p.key} is declared twice`);
    purposeKeys.add(p.key);
    if (p.legalBasis === undefined) error(at, `purpose ${p.key} has no legal basis (GDPR Art. 6(1)(a)–(f))`);
    if (p.consentRequired === true && p.legalBasis !== undefined && p.legalBasis !== 'consent') {
      error([...at, 'consentRequired'], `consentRequired is true but the legal basis is ${p.legalBasis}: consent is then not the basis`);
    }
    if (p.consentRequired === false && p.legalBasis === 'consent') error([...at, 'consentRequired'], 'a purpose based on consent requires consent');
    if (p.legalBasis === 'legitimate_interests' && p.legitimateInterest === undefined) {
      warning(at, `purpose ${p.key} relies on legitimate interests without stating the interest (legitimateInterest; GDPR Art. 13(1)(d))`);
    }
    p.dataUses.forEach((u, j) => taxonomy([...at, 'dataUses', j], u, 'data_use'));
    p.dataSubjects.forEach((s, j) => taxonomy([...at, 'dataSubjects', j], s, 'data_subject'));
    if (p.retention !== undefined && parseRetentionPeriod(p.retention) === undefined) error([...at, 'retention'], 'retention must be an ISO 8601 duration');
  });
  const checkPurposeRef = (at: Path, key: string) => {
    if (!purposeKeys.has(key)) error(at, `unknown purpose ${key}: declare it under purposes`);
  };

  // Systems, datasets, collections, fields.
  const systemKeys = new Set<string>();
  const datasetSystem = new Map<string, string>();
  const fieldAt = new Map<string, { at: Path; field: Field; collection: string; system: string; erasureNull: boolean }>();
  const specialByPurpose = new Map<string, string[]>();
  m.systems.forEach((s, si) => {
    const sAt: Path = ['systems', si];
    if (systemKeys.has(s.key)) error([...sAt, 'key'], `system ${s.key} is declared twice`);
    systemKeys.add(s.key);
    s.purposes.forEach((p, j) => checkPurposeRef([...sAt, 'purposes', j], p));
    if (s.connection !== undefined) checkConnection([...sAt, 'connection'], s.connection, error);
    s.recipients.forEach((r, j) => {
      r.purposes.forEach((p, k) => checkPurposeRef([...sAt, 'recipients', j, 'purposes', k], p));
      r.dataCategories.forEach((c, k) => taxonomy([...sAt, 'recipients', j, 'dataCategories', k], c, 'data_category'));
    });
    s.transfers.forEach((t, j) => {
      const tAt = [...sAt, 'transfers', j];
      t.dataCategories.forEach((c, k) => taxonomy([...tAt, 'dataCategories', k], c, 'data_category'));
      const adequacy = adequacyOf(t.country);
      if (t.mechanism === undefined && (adequacy.status === 'none' || adequacy.status === 'partial')) {
        error(tAt, `transfer to ${t.country} has no mechanism and ${t.country} has no ${adequacy.status === 'partial' ? 'general ' : ''}adequacy decision (GDPR Art. 44–46): declare scc, bcr, dpf or a derogation`);
      }
      if (t.mechanism === 'adequacy' && adequacy.status !== 'adequate' && adequacy.status !== 'eea') {
        error([...tAt, 'mechanism'], `mechanism adequacy is declared but ${t.country} has no general adequacy decision`);
      }
      if (t.mechanism === 'dpf' && t.country !== 'US') error([...tAt, 'mechanism'], 'the EU-U.S. Data Privacy Framework covers transfers to certified organisations in the US only');
    });
    s.datasets.forEach((d, di) => {
      const dAt: Path = [...sAt, 'datasets', di];
      const other = datasetSystem.get(d.key);
      if (other !== undefined) error([...dAt, 'key'], `dataset ${d.key} is declared twice (also in system ${other}); dataset keys are unique across systems`);
      datasetSystem.set(d.key, s.key);
      const collectionNames = new Set<string>();
      d.collections.forEach((c, ci) => {
        const cAt: Path = [...dAt, 'collections', ci];
        if (collectionNames.has(c.name)) error([...cAt, 'name'], `collection ${c.name} is declared twice in dataset ${d.key}`);
        collectionNames.add(c.name);
        c.dataSubjects.forEach((x, j) => taxonomy([...cAt, 'dataSubjects', j], x, 'data_subject'));
        c.purposes.forEach((p, j) => checkPurposeRef([...cAt, 'purposes', j], p));
        const collAddress = `${d.key}.${c.name}`;
        const walk = (fields: readonly Field[], at: Path, prefix: string, parentErasure: Collection['erasure']) => {
          const names = new Set<string>();
          fields.forEach((f, fi) => {
            const fAt: Path = [...at, fi];
            if (names.has(f.name)) error([...fAt, 'name'], `field ${f.name} is declared twice`);
            names.add(f.name);
            const address = `${prefix}.${f.name}`;
            const erasure = f.erasure ?? parentErasure;
            fieldAt.set(address, { at: fAt, field: f, collection: collAddress, system: s.key, erasureNull: erasure?.strategy === 'null' });
            f.dataCategories.forEach((cat, j) => {
              taxonomy([...fAt, 'dataCategories', j], cat, 'data_category');
              if (isSpecialCategory(cat)) for (const p of new Set([...c.purposes, ...s.purposes])) specialByPurpose.set(p, [...(specialByPurpose.get(p) ?? []), address]);
            });
            if (f.identity !== undefined && f.indexed === undefined) {
              error(fAt, `identity field ${f.name} has no index hint: say indexed: true or false, so that request planning knows the cost of a lookup by it`);
            }
            if (f.primaryKey === true && erasure !== undefined && ['null', 'mask', 'hash'].includes(erasure.strategy)) {
              error([...fAt, f.erasure === undefined ? 'primaryKey' : 'erasure'], `erasure strategy ${erasure.strategy} cannot apply to primary key ${f.name}: rows would lose their identity; use delete_row or retain`);
            }
            if (f.fields.length > 0 && f.erasure !== undefined && ['mask', 'hash'].includes(f.erasure.strategy)) {
              error([...fAt, 'erasure'], `erasure strategy ${f.erasure.strategy} needs a scalar field; ${f.name} has nested fields: put strategies on them`);
            }
            if (f.dataCategories.some((cat) => cat.startsWith('user.')) && erasure === undefined) {
              warning(fAt, `field ${f.name} holds personal data but declares no erasure strategy (nor does its collection); erasure requests will report it as unhandled`);
            }
            walk(f.fields, [...fAt, 'fields'], address, erasure);
          });
        };
        walk(c.fields, [...cAt, 'fields'], collAddress, c.erasure);
        c.retention.forEach((r, ri) => {
          const rAt = [...cAt, 'retention', ri];
          if (!c.fields.some((f) => f.name === r.field)) error([...rAt, 'field'], `retention age field ${r.field} is not a field of collection ${c.name}`);
          if (r.action === 'anonymise') {
            if (r.fields === undefined || r.fields.length === 0) error([...rAt, 'fields'], 'an anonymise rule names the fields to anonymise');
            for (const [k, name] of (r.fields ?? []).entries()) {
              const f = c.fields.find((x) => x.name === name);
              const strategy = (f?.erasure ?? c.erasure)?.strategy;
              if (f === undefined) error([...rAt, 'fields', k], `field ${name} is not a field of collection ${c.name}`);
              else if (strategy === undefined || strategy === 'delete_row' || strategy === 'retain') {
                error([...rAt, 'fields', k], `field ${name} needs an erasure strategy null, mask or hash to be anonymised`);
              }
            }
          }
        });
      });
    });
  });

  // References: the target exists; erasure order within a system is possible.
  const deps = new Map<string, Map<string, { from: string; nullable: boolean }>>(); // child collection → parent collection
  for (const [address, entry] of fieldAt) {
    entry.field.references.forEach((r, j) => {
      const target = fieldAt.get(r.field);
      if (target === undefined) {
        error([...entry.at, 'references', j, 'field'], `reference to ${r.field}, which is not a declared field`);
        return;
      }
      if (r.field === address) error([...entry.at, 'references', j, 'field'], 'a field cannot reference itself');
      // Within a system, the declaring field holds the foreign key: its rows go before the referenced ones.
      if (target.system === entry.system && target.collection !== entry.collection) {
        const edges = deps.get(entry.collection) ?? new Map<string, { from: string; nullable: boolean }>();
        const prev = edges.get(target.collection);
        edges.set(target.collection, { from: address, nullable: (prev?.nullable ?? true) && entry.erasureNull });
        deps.set(entry.collection, edges);
      }
    });
  }
  for (const cycle of findCycles(deps)) {
    const breakable = cycle.some((c, i) => deps.get(c)!.get(cycle[(i + 1) % cycle.length]!)!.nullable);
    if (breakable) continue;
    const first = deps.get(cycle[0]!)!.get(cycle[1 % cycle.length]!)!.from;
    error(fieldAt.get(first)!.at, `reference cycle ${[...cycle, cycle[0]].join(' → ')} makes an erasure order impossible: give one of its reference fields erasure strategy null so the cycle can be broken first`);
  }

  // Special categories need an Art. 9(2) condition on every purpose that processes them.
  m.purposes.forEach((p, i) => {
    const fields = specialByPurpose.get(p.key);
    if (fields !== undefined && p.specialCategoryCondition === undefined) {
      error(['purposes', i], `purpose ${p.key} processes special categories of data (${fields.slice(0, 3).join(', ')}${fields.length > 3 ? ', …' : ''}) without a condition of GDPR Art. 9(2) (specialCategoryCondition)`);
    }
  });
  return issues;
}

/** Connections carry secrets only as `${VAR}` references: a literal password is refused. */
function checkConnection(at: Path, connection: string, error: (at: Path, message: string) => void): void {
  const stripped = connection.replace(/\$\{[A-Za-z_][A-Za-z0-9_]*\}/g, '');
  if (/\$\{/.test(stripped)) {
    error(at, 'malformed ${VAR} reference: use ${NAME} with letters, digits and _');
    return;
  }
  const credentials = /^[a-z][a-z0-9+.-]*:\/\/([^@/?#]*)@/i.exec(connection);
  const password = credentials?.[1]?.includes(':') === true ? credentials[1].slice(credentials[1].indexOf(':') + 1) : undefined;
  if (password !== undefined && password !== '' && !/^\$\{[A-Za-z_][A-Za-z0-9_]*\}$/.test(password)) {
    error(at, 'the connection contains a literal password: write it as a ${VAR} reference and set the variable where Custodian runs');
  }
  if (/[?&](password|passwd|pwd|secret|token|api[_-]?key)=(?!\$\{[A-Za-z_][A-Za-z0-9_]*\}(&|$))[^&]/i.test(connection)) {
    error(at, 'the connection contains a literal secret parameter: write it as a ${VAR} reference');
  }
}

/** Elementary cycles found by DFS (each reported once, starting at its smallest member). */
function findCycles(graph: ReadonlyMap<string, ReadonlyMap<string, unknown>>): string[][] {
  const cycles: string[][] = [];
  const seen = new Set<string>();
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (node: string) => {
    state.set(node, 'open');
    stack.push(node);
    for (const next of graph.get(node)?.keys() ?? []) {
      if (state.get(next) === 'open') {
        const cycle = stack.slice(stack.indexOf(next));
        const min = cycle.reduce((a, b) => (b < a ? b : a));
        const rotated = [...cycle.slice(cycle.indexOf(min)), ...cycle.slice(0, cycle.indexOf(min))];
        const id = rotated.join('→');
        if (!seen.has(id)) {
          seen.add(id);
          cycles.push(rotated);
        }
      } else if (state.get(next) === undefined) visit(next);
    }
    stack.pop();
    state.set(node, 'done');
  };
  for (const node of [...graph.keys()].sort()) if (state.get(node) === undefined) visit(node);
  return cycles;
}

/**
 * Checks erasure strategies and index hints against the real tables of a system: `null` on a NOT NULL column,
 * declared fields missing from the table, identity fields declared indexed that have no index.
 */
export function introspectionIssues(m: Manifest, systemIndex: number, tables: readonly IntrospectedTable[]): RawIssue[] {
  const issues: RawIssue[] = [];
  const s = m.systems[systemIndex]!;
  const byName = new Map(tables.map((t) => [t.name.toLowerCase(), t]));
  s.datasets.forEach((d, di) =>
    d.collections.forEach((c, ci) => {
      const cAt: Path = ['systems', systemIndex, 'datasets', di, 'collections', ci];
      const table = byName.get(c.name.toLowerCase());
      if (table === undefined) {
        issues.push({ severity: 'error', at: [...cAt, 'name'], message: `table ${c.name} does not exist in system ${s.key}` });
        return;
      }
      c.fields.forEach((f, fi) => {
        const fAt: Path = [...cAt, 'fields', fi];
        const column = table.columns.find((col) => col.name.toLowerCase() === f.name.toLowerCase());
        if (column === undefined) {
          // Nested fields of a JSON column are not columns; a top-level field must be one.
          issues.push({ severity: 'error', at: [...fAt, 'name'], message: `column ${f.name} does not exist in table ${table.name}` });
          return;
        }
        const erasure = f.erasure ?? c.erasure;
        if (erasure?.strategy === 'null' && (!column.nullable || column.primaryKey)) {
          issues.push({ severity: 'error', at: [...fAt, f.erasure === undefined ? 'name' : 'erasure'], message: `erasure strategy null cannot work: column ${table.name}.${column.name} is ${column.primaryKey ? 'part of the primary key' : 'NOT NULL'}` });
        }
        if (f.identity !== undefined && f.indexed === true && !column.indexed && !column.primaryKey) {
          issues.push({ severity: 'warning', at: [...fAt, 'indexed'], message: `identity field ${f.name} is declared indexed but ${table.name}.${column.name} has no index: lookups will scan the table` });
        }
      });
    }),
  );
  return issues;
}
