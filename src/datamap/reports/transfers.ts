import { ADEQUACY_LIST_AS_OF, TRANSFER_MECHANISMS, adequacyOf, normaliseCountry, type AdequacyRegime, type AdequacyResult, type TransferMechanism } from '../../core/index.js';
import type { System, Transfer } from '../manifest.js';
import type { DataMap } from '../model.js';
import { recipientPath, systemPath, transferPath } from './manifest-paths.js';
import { plain } from './plain-text.js';

/**
 * - `ok`: the declared mechanism (or an adequacy finding) fits the destination.
 * - `missing_mechanism`: data leaves the exporter's area with nothing that makes it lawful (GDPR Art. 44).
 * - `mechanism_inconsistent`: the declared mechanism cannot apply to this destination (`dpf` outside the US,
 *   `adequacy` where there is no decision).
 * - `not_a_transfer`: the destination is inside the exporter's area; listed for declared transfers only.
 */
export type TransferVerdict = 'ok' | 'missing_mechanism' | 'mechanism_inconsistent' | 'not_a_transfer';

/** One assessed flow of personal data to a country. */
export interface TransferAssessmentRow {
  /** `transfer`: a declared transfer; `recipient` / `residency`: a flow outside the area that no declared transfer covers. */
  readonly kind: 'transfer' | 'recipient' | 'residency';
  /** Key of the system the data leaves from (or is stored in, for `residency`). */
  readonly system: string;
  readonly country: string;
  readonly recipient?: string;
  readonly mechanism?: TransferMechanism;
  /** Where the safeguard is documented, as declared. */
  readonly reference?: string;
  readonly dataCategories: readonly string[];
  readonly adequacy: AdequacyResult;
  readonly verdict: TransferVerdict;
  /** Why, in sentences a reviewer can check. */
  readonly reasons: readonly string[];
  /** The provisions the verdict rests on. */
  readonly citations: readonly string[];
  /** Manifest paths of the declaration(s) assessed. */
  readonly sources: readonly string[];
  /** For `transfer` rows: recipients and system residencies the transfer covers (manifest paths). */
  readonly covers: readonly string[];
}

/** Options of {@link assessTransfers}. */
export interface TransferAssessmentOptions {
  /** Whose rules: the EEA's (default) or the United Kingdom's. */
  readonly regime?: AdequacyRegime;
}

/** The transfer assessment of a data map. */
export interface TransferAssessment {
  readonly regime: AdequacyRegime;
  /** {@link ADEQUACY_LIST_AS_OF}: how fresh the adequacy data is. */
  readonly adequacyListAsOf: string;
  readonly rows: readonly TransferAssessmentRow[];
  /** Systems without a declared residency: their storage location could not be assessed. */
  readonly systemsWithoutResidency: readonly string[];
  readonly summary: Readonly<Record<TransferVerdict, number>>;
}

const FLAGGED: ReadonlySet<TransferVerdict> = new Set(['missing_mechanism', 'mechanism_inconsistent']);

/** Whether a verdict needs action. */
export function isFlagged(verdict: TransferVerdict): boolean {
  return FLAGGED.has(verdict);
}

/**
 * Assesses every declared transfer, and every recipient country and system residency outside the exporter's area
 * that no declared transfer of the same system covers, against the adequacy list and the declared mechanism.
 * A declared transfer covers a recipient when it names it (case-insensitively), and a recipient or a residency
 * when it goes to the same country without naming any recipient; a residency is also covered by any transfer of
 * its system to that country. Rows in declaration order. O(systems × (recipients + transfers)²) — small lists.
 */
export function assessTransfers(map: DataMap, options: TransferAssessmentOptions = {}): TransferAssessment {
  const regime = options.regime ?? 'EU';
  const rows: TransferAssessmentRow[] = [];
  const withoutResidency: string[] = [];
  for (const system of map.systems) {
    const covers = system.transfers.map((): string[] => []);
    const coveringIndex = (country: string, recipient: string | undefined): number => {
      const c = normaliseCountry(country);
      const named = recipient === undefined ? -1 : system.transfers.findIndex((t) => t.recipient !== undefined && sameName(t.recipient, recipient));
      if (named >= 0) return named;
      const generic = system.transfers.findIndex((t) => normaliseCountry(t.country) === c && t.recipient === undefined);
      if (generic >= 0 || recipient !== undefined) return generic;
      return system.transfers.findIndex((t) => normaliseCountry(t.country) === c);
    };
    const uncovered: TransferAssessmentRow[] = [];
    if (system.residency === undefined) withoutResidency.push(system.key);
    else {
      const adequacy = adequacyOf(system.residency.country, regime);
      if (!inArea(adequacy)) {
        const i = coveringIndex(system.residency.country, undefined);
        if (i >= 0) covers[i]!.push(`${systemPath(system)}.residency`);
        else uncovered.push(row('residency', system, adequacy, undefined, [`${systemPath(system)}.residency`], [], regime, 'Personal data is stored in this system outside the area.'));
      }
    }
    system.recipients.forEach((party, index) => {
      if (party.country === undefined) return;
      const adequacy = adequacyOf(party.country, regime);
      if (inArea(adequacy)) return;
      const i = coveringIndex(party.country, party.name);
      if (i >= 0) covers[i]!.push(recipientPath(system, index));
      else
        uncovered.push({
          ...row('recipient', system, adequacy, undefined, [recipientPath(system, index)], party.dataCategories, regime, `Recipient ${party.name} (${party.type}) is outside the area.`),
          recipient: party.name,
        });
    });
    system.transfers.forEach((t, index) => rows.push(transferRow(system, t, index, covers[index]!, regime)));
    rows.push(...uncovered);
  }
  const summary: Record<TransferVerdict, number> = { ok: 0, missing_mechanism: 0, mechanism_inconsistent: 0, not_a_transfer: 0 };
  for (const r of rows) summary[r.verdict] += 1;
  return { regime, adequacyListAsOf: ADEQUACY_LIST_AS_OF, rows, systemsWithoutResidency: withoutResidency, summary };
}

function inArea(a: AdequacyResult): boolean {
  return a.status === 'eea' || a.status === 'domestic';
}

function sameName(a: string, b: string): boolean {
  return a.trim().toLowerCase() === b.trim().toLowerCase();
}

function transferRow(system: System, t: Transfer, index: number, covers: readonly string[], regime: AdequacyRegime): TransferAssessmentRow {
  const adequacy = adequacyOf(t.country, regime);
  const base = row('transfer', system, adequacy, t.mechanism, [transferPath(system, index)], t.dataCategories, regime, undefined);
  return { ...base, ...(t.recipient === undefined ? {} : { recipient: t.recipient }), ...(t.reference === undefined ? {} : { reference: t.reference }), covers };
}

function row(
  kind: TransferAssessmentRow['kind'],
  system: System,
  adequacy: AdequacyResult,
  mechanism: TransferMechanism | undefined,
  sources: string[],
  dataCategories: readonly string[],
  regime: AdequacyRegime,
  lead: string | undefined,
): TransferAssessmentRow {
  const j = judge(adequacy, mechanism, regime);
  return {
    kind,
    system: system.key,
    country: adequacy.country,
    ...(mechanism === undefined ? {} : { mechanism }),
    dataCategories,
    adequacy,
    verdict: j.verdict,
    reasons: lead === undefined ? j.reasons : [lead, ...j.reasons],
    citations: j.citations,
    sources,
    covers: [],
  };
}

/** The article of a mechanism under the regime (the UK uses the same articles of the UK GDPR, and its own instruments). */
export function mechanismCitation(mechanism: TransferMechanism, regime: AdequacyRegime): string {
  if (regime === 'EU') return TRANSFER_MECHANISMS[mechanism].article;
  if (mechanism === 'dpf') return 'UK GDPR Art. 45; The Data Protection (Adequacy) (United States of America) Regulations 2023 (SI 2023/1028)';
  if (mechanism === 'scc') return 'UK GDPR Art. 46(2)(d); DPA 2018 s. 119A: the ICO International Data Transfer Agreement or the UK Addendum to the EU SCCs';
  return TRANSFER_MECHANISMS[mechanism].article.replace(/^GDPR /, 'UK GDPR ');
}

function judge(a: AdequacyResult, mechanism: TransferMechanism | undefined, regime: AdequacyRegime): { verdict: TransferVerdict; reasons: string[]; citations: string[] } {
  const area = regime === 'EU' ? 'the EEA' : 'the United Kingdom';
  const decision = a.decision === undefined ? '' : ` (${a.decision.decision})`;
  const scope = a.note === undefined ? [] : [a.note];
  const mech = mechanism === undefined ? [] : [mechanismCitation(mechanism, regime)];
  // The adequacy citation is given when the verdict rests on the finding (or its absence), not beside a safeguard.
  const onAdequacy = [a.citation, ...mech];
  if (a.status === 'eea' || a.status === 'domestic') {
    return { verdict: 'not_a_transfer', reasons: [`${a.country} is inside ${area}: no transfer mechanism is needed${mechanism === undefined ? '' : `; the declared \`${mechanism}\` is unnecessary`}.`], citations: [a.citation] };
  }
  if (mechanism === undefined) {
    if (a.status === 'adequate') return { verdict: 'ok', reasons: [`Covered by the adequacy finding for ${a.country}${decision}; declare \`mechanism: adequacy\` to say so.`, ...scope], citations: onAdequacy };
    if (a.status === 'partial') {
      const hint = a.country === 'US' ? 'declare `dpf` if the recipient is certified, or `scc`/`bcr`' : 'check the recipient is within its scope and declare `adequacy`, or declare `scc`/`bcr`';
      return { verdict: 'missing_mechanism', reasons: [`The adequacy finding for ${a.country}${decision} covers only some recipients: ${hint}.`, ...scope], citations: onAdequacy };
    }
    return { verdict: 'missing_mechanism', reasons: [`${a.country} has no adequacy finding and no mechanism is declared: put safeguards in place (Art. 46/47) or document a derogation (Art. 49).`], citations: onAdequacy };
  }
  if (mechanism === 'dpf') {
    if (a.country !== 'US') return { verdict: 'mechanism_inconsistent', reasons: [`\`dpf\` covers only recipients in the United States, not ${a.country}.`], citations: mech };
    const listing = regime === 'UK' ? 'on the Data Privacy Framework List with the UK Extension' : 'on the Data Privacy Framework List';
    return { verdict: 'ok', reasons: [`The recipient must be ${listing} for the data transferred; check the listing and record it in \`reference\`.`], citations: onAdequacy };
  }
  if (mechanism === 'adequacy') {
    if (a.status === 'none') return { verdict: 'mechanism_inconsistent', reasons: [`\`adequacy\` is declared but ${a.country} has no adequacy finding under the ${regime} regime.`], citations: onAdequacy };
    if (a.country === 'US') return { verdict: 'mechanism_inconsistent', reasons: ['The US finding covers only Data Privacy Framework participants: declare `dpf` (with the listing as `reference`) instead of `adequacy`.'], citations: onAdequacy };
    return { verdict: 'ok', reasons: [`Adequacy finding for ${a.country}${decision}.`, ...scope], citations: [a.citation] };
  }
  const reasons = [`${TRANSFER_MECHANISMS[mechanism].label}.`];
  if (mechanism.startsWith('derogation_')) reasons.push('Art. 49 derogations suit occasional, non-repetitive transfers only, not systematic ones (EDPB Guidelines 2/2018).');
  if (a.status === 'adequate') reasons.push(`An adequacy finding also covers ${a.country}.`);
  return { verdict: 'ok', reasons, citations: mech };
}

/** The assessment as plain text, one block per row, flagged rows marked `!!`. */
export function transfersToText(a: TransferAssessment): string {
  const lines = [`Transfer assessment (${a.regime} regime; adequacy list as of ${a.adequacyListAsOf})`, ''];
  for (const r of a.rows) {
    const mark = isFlagged(r.verdict) ? '!!' : '  ';
    const to = r.recipient === undefined ? r.country : `${r.country} (${plain(r.recipient)})`;
    lines.push(`${mark} ${r.verdict.padEnd(22)} ${r.system} -> ${to}: ${r.mechanism ?? 'no mechanism'} [adequacy: ${r.adequacy.status}]`);
    for (const reason of r.reasons) lines.push(`     ${plain(reason)}`);
    lines.push(`     cites: ${r.citations.join(' | ')}`);
    lines.push(`     from: ${plain([...r.sources, ...r.covers].join(', '))}`);
  }
  if (a.rows.length === 0) lines.push('No transfers outside the area.');
  if (a.systemsWithoutResidency.length > 0) lines.push('', `Systems without a declared residency: ${a.systemsWithoutResidency.join(', ')}`);
  const s = a.summary;
  lines.push('', `ok ${s.ok}, missing mechanism ${s.missing_mechanism}, inconsistent ${s.mechanism_inconsistent}, not a transfer ${s.not_a_transfer}`);
  return lines.join('\n') + '\n';
}
