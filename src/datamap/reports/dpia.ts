import { isDataUse, isSensitiveCategory, isSpecialCategory, SPECIAL_CATEGORY_CONDITIONS, specialCategoryOf } from '../../core/index.js';
import type { Purpose } from '../manifest.js';
import type { DataMap } from '../model.js';
import { collectionEntryPath, fieldPath, purposePath, purposeScope, systemPath, unique } from './manifest-paths.js';
import { plain } from './plain-text.js';

/**
 * The nine criteria of the Article 29 Working Party's Guidelines on DPIA (WP248 rev.01, endorsed by the EDPB),
 * section III.B.a, in their order. Processing meeting two or more is likely to be high risk (GDPR Art. 35(1)).
 */
export const WP248_CRITERIA = {
  evaluation_scoring: { number: 1, title: 'Evaluation or scoring, including profiling and predicting' },
  automated_decision_making: { number: 2, title: 'Automated decision-making with legal or similarly significant effect' },
  systematic_monitoring: { number: 3, title: 'Systematic monitoring' },
  sensitive_data: { number: 4, title: 'Sensitive data or data of a highly personal nature' },
  large_scale: { number: 5, title: 'Data processed on a large scale' },
  matching_combining: { number: 6, title: 'Matching or combining datasets' },
  vulnerable_subjects: { number: 7, title: 'Data concerning vulnerable data subjects' },
  innovative_technology: { number: 8, title: 'Innovative use or applying new technological or organisational solutions' },
  preventing_rights: { number: 9, title: 'Prevents data subjects from exercising a right or using a service or a contract' },
} as const;

/** A key of {@link WP248_CRITERIA}: what `purpose.dpia.criteria` declares. */
export type DpiaCriterion = keyof typeof WP248_CRITERIA;
export const DPIA_CRITERIA = Object.keys(WP248_CRITERIA) as DpiaCriterion[];

/** Why a criterion is met: derived from declarations (with their paths) or declared by the team. */
export interface DpiaReason {
  readonly text: string;
  readonly declared: boolean;
  readonly sources: readonly string[];
}

export interface DpiaCriterionResult {
  readonly key: DpiaCriterion;
  readonly number: number;
  readonly title: string;
  readonly met: boolean;
  readonly reasons: readonly DpiaReason[];
}

/** WP248: two or more criteria → required; the report also recommends one at a single criterion. */
export type DpiaConclusion = 'required' | 'recommended' | 'not_required';

export interface DpiaScreening {
  readonly purpose: string;
  readonly title: string;
  readonly criteria: readonly DpiaCriterionResult[];
  readonly metCount: number;
  readonly conclusion: DpiaConclusion;
  /** `DPIA required`, `DPIA recommended`, `DPIA not required`. */
  readonly conclusionText: string;
  /** Where the DPIA is, when the team declared one. */
  readonly dpiaReference?: string;
  readonly notes: readonly string[];
}

export interface DpiaReport {
  readonly citation: string;
  readonly screenings: readonly DpiaScreening[];
}

const CONCLUSION_TEXT: Readonly<Record<DpiaConclusion, string>> = { required: 'DPIA required', recommended: 'DPIA recommended', not_required: 'DPIA not required' };

// Data uses that evaluate or score people (WP248 criterion 1: profiling, behavioural advertising, screening
// against fraud databases). Contextual ads, frequency capping and limited personalisation are not.
const EVALUATION_USES = ['marketing.advertising', 'marketing.advertising.profiling', 'marketing.advertising.first_party.targeted', 'marketing.advertising.third_party.targeted', 'personalize', 'essential.fraud_detection'];
const NOT_EVALUATION_USES = ['marketing.advertising.first_party.contextual', 'marketing.advertising.frequency_capping', 'marketing.advertising.negative_targeting', 'marketing.advertising.serving', 'personalize.content.limited', 'personalize.system'];
// Data uses that observe behaviour over time (criterion 3) when combined with tracking data.
const MONITORING_USES = ['analytics', 'marketing.advertising', 'personalize'];
// Categories that track a person's device, location, behaviour or body (criterion 3).
const TRACKING_CATEGORIES = ['user.device', 'user.location', 'user.behavior', 'user.telemetry', 'user.sensor', 'user.user_sensor'];
// WP248 criterion 7: employees, children, patients, asylum seekers, the elderly, the mentally ill … — people in a
// power imbalance with the controller. fideslang subjects plus the common custom keys.
const VULNERABLE_SUBJECTS = ['employee', 'job_applicant', 'trainee', 'patient', 'child', 'children', 'minor', 'student', 'pupil', 'elderly', 'asylum_seeker'];
const CHILD_CATEGORIES = ['user.childrens', 'user.children'];
// Criterion 8: WP248 names combining fingerprint and face recognition, and new IoT uses; AI training is the
// current example (EDPB Opinion 28/2024).
const INNOVATIVE_USES = ['train_ai_system'];
const BIOMETRIC_CATEGORIES = ['user.biometric', 'user.biometrics', 'user.authorization.biometric', 'user.authorization.biometrics'];

const under = (key: string, prefixes: readonly string[]) => prefixes.some((p) => key === p || key.startsWith(p + '.'));

function criterionKey(declared: string): DpiaCriterion | undefined {
  const k = declared.trim().toLowerCase().replace(/[\s-]+/g, '_');
  if (k in WP248_CRITERIA) return k as DpiaCriterion;
  const n = Number.parseInt(k, 10);
  return String(n) === k ? DPIA_CRITERIA.find((c) => WP248_CRITERIA[c].number === n) : undefined;
}

/**
 * Screens every purpose against the nine WP248 criteria: those the manifest shows (data uses, data categories
 * and subjects of the collections serving the purpose, the systems involved) plus those the team declares in
 * `purpose.dpia.criteria` (by key or number). Large scale, automated decisions and preventing the exercise of a
 * right cannot be seen in a manifest: they count only when declared. O(purposes × fields).
 */
export function screenDpia(map: DataMap): DpiaReport {
  return { citation: 'GDPR Art. 35(1), (3); WP29 Guidelines on DPIA, WP248 rev.01, III.B.a (endorsed by the EDPB)', screenings: map.purposes.map((p) => screenPurpose(map, p)) };
}

function screenPurpose(map: DataMap, p: Purpose): DpiaScreening {
  const scope = purposeScope(map, p.key);
  const reasons = new Map<DpiaCriterion, DpiaReason[]>(DPIA_CRITERIA.map((c) => [c, []]));
  const add = (c: DpiaCriterion, text: string, sources: readonly string[], declared = false) => reasons.get(c)!.push({ text, declared, sources: unique(sources) });
  const pPath = purposePath(p);
  const notes: string[] = [];

  const uses = unique([...(isDataUse(p.key) ? [p.key] : []), ...p.dataUses]);
  const fields = map.fields().filter((f) => scope.collections.some((c) => c.collection === f.collection && c.dataset === f.dataset));
  const categorySources = new Map<string, string[]>();
  for (const f of fields) for (const c of f.field.dataCategories) categorySources.set(c, [...(categorySources.get(c) ?? []), fieldPath(f)]);
  const categories = [...categorySources.keys()].sort();
  const sourcesOf = (cats: readonly string[]) => cats.flatMap((c) => categorySources.get(c) ?? []);
  const subjectSources = new Map<string, string[]>();
  for (const s of p.dataSubjects) subjectSources.set(s, [`${pPath}.dataSubjects`]);
  for (const c of scope.collections) for (const s of c.collection.dataSubjects) subjectSources.set(s, [...(subjectSources.get(s) ?? []), collectionEntryPath(c)]);

  // 1. Evaluation or scoring.
  const evaluating = uses.filter((u) => (under(u, EVALUATION_USES) || u.split('.').some((s) => s === 'profiling' || s === 'profiled')) && !under(u, NOT_EVALUATION_USES));
  if (evaluating.length > 0) add('evaluation_scoring', `Data use ${evaluating.join(', ')} evaluates or profiles people.`, [pPath]);

  // 3. Systematic monitoring.
  const tracking = categories.filter((c) => under(c, TRACKING_CATEGORIES));
  const monitoringUses = uses.filter((u) => under(u, MONITORING_USES) && !under(u, NOT_EVALUATION_USES));
  const vulnerable = [...subjectSources.keys()].filter((s) => VULNERABLE_SUBJECTS.includes(s));
  if (tracking.length > 0 && monitoringUses.length > 0) {
    add('systematic_monitoring', `Data use ${monitoringUses.join(', ')} with tracking data ${tracking.join(', ')}.`, [pPath, ...sourcesOf(tracking)]);
  } else if (tracking.length > 0 && vulnerable.some((s) => s !== 'patient')) {
    add('systematic_monitoring', `Tracking data ${tracking.join(', ')} about ${vulnerable.join(', ')} (workplace or similar monitoring).`, sourcesOf(tracking));
  }
  const precise = categories.filter((c) => under(c, ['user.location.precise']));
  if (precise.length > 0 && !(tracking.length > 0 && monitoringUses.length > 0)) add('systematic_monitoring', 'Precise location is processed.', sourcesOf(precise));

  // 4. Sensitive or highly personal data.
  const special = categories.filter((c) => isSpecialCategory(c));
  const sensitive = categories.filter((c) => !isSpecialCategory(c) && isSensitiveCategory(c));
  if (special.length > 0) {
    const grounds = unique(special.map((c) => specialCategoryOf(c)).flatMap((s) => (s === undefined ? [] : [`${s.ground} (${s.article})`])));
    add('sensitive_data', `Special categories: ${special.join(', ')} — ${grounds.join('; ')}.`, sourcesOf(special));
  }
  if (sensitive.length > 0) add('sensitive_data', `Highly personal data: ${sensitive.join(', ')}.`, sourcesOf(sensitive));
  if (p.specialCategoryCondition !== undefined) {
    add('sensitive_data', `The purpose declares the special-category condition ${p.specialCategoryCondition} (${SPECIAL_CATEGORY_CONDITIONS[p.specialCategoryCondition].article}).`, [`${pPath}.specialCategoryCondition`]);
  }

  // 6. Matching or combining datasets from different systems.
  if (scope.systems.length >= 2) {
    const datasets = unique(scope.collections.map((c) => c.dataset.key));
    add('matching_combining', `The purpose combines data from ${scope.systems.length} systems (${scope.systems.map((s) => s.key).join(', ')}) and ${datasets.length} datasets.`, [
      ...scope.systems.map(systemPath),
      ...scope.collections.map(collectionEntryPath),
    ]);
  }

  // 7. Vulnerable data subjects.
  if (vulnerable.length > 0) add('vulnerable_subjects', `Data subjects: ${vulnerable.join(', ')}.`, vulnerable.flatMap((s) => subjectSources.get(s) ?? []));
  const children = categories.filter((c) => under(c, CHILD_CATEGORIES));
  if (children.length > 0) add('vulnerable_subjects', `Children's data: ${children.join(', ')}.`, sourcesOf(children));

  // 8. Innovative technology.
  const innovative = uses.filter((u) => under(u, INNOVATIVE_USES));
  if (innovative.length > 0) add('innovative_technology', `Data use ${innovative.join(', ')}.`, [pPath]);
  const biometric = categories.filter((c) => under(c, BIOMETRIC_CATEGORIES));
  if (biometric.length > 0) add('innovative_technology', `Biometric identification: ${biometric.join(', ')}.`, sourcesOf(biometric));

  // Declared by the team.
  for (const d of p.dpia?.criteria ?? []) {
    const key = criterionKey(d);
    if (key === undefined) notes.push(`Unknown criterion "${plain(d)}" in ${pPath}.dpia.criteria: use one of ${DPIA_CRITERIA.join(', ')}.`);
    else add(key, 'Declared by the team.', [`${pPath}.dpia.criteria`], true);
  }

  const criteria = DPIA_CRITERIA.map((key): DpiaCriterionResult => {
    const r = reasons.get(key)!;
    return { key, number: WP248_CRITERIA[key].number, title: WP248_CRITERIA[key].title, met: r.length > 0, reasons: r };
  });
  const metCount = criteria.filter((c) => c.met).length;
  const conclusion: DpiaConclusion = metCount >= 2 ? 'required' : metCount === 1 ? 'recommended' : 'not_required';
  const reference = p.dpia?.reference;
  if (reference !== undefined) notes.push(`A DPIA is declared: ${reference}.`);
  else if (conclusion === 'required') notes.push(`No DPIA reference is declared: carry one out before processing (GDPR Art. 35(1)) and record it in ${pPath}.dpia.reference.`);
  if (scope.collections.length === 0 && scope.systems.length === 0) notes.push('No system or collection serves this purpose: only declared criteria could be screened.');
  return {
    purpose: p.key,
    title: p.title,
    criteria,
    metCount,
    conclusion,
    conclusionText: CONCLUSION_TEXT[conclusion],
    ...(reference === undefined ? {} : { dpiaReference: reference }),
    notes,
  };
}

/** The screening as plain text: one block per purpose with the criteria met and why. */
export function dpiaToText(report: DpiaReport): string {
  const lines = [`DPIA screening (${report.citation})`, ''];
  for (const s of report.screenings) {
    lines.push(`${plain(s.purpose)} — ${plain(s.title)}: ${s.conclusionText} (${s.metCount} of 9 criteria)`);
    for (const c of s.criteria.filter((x) => x.met)) {
      lines.push(`  [${c.number}] ${c.title}`);
      for (const r of c.reasons) lines.push(`      ${plain(r.text)}${r.sources.length > 0 ? ` (${plain(r.sources.join(', '))})` : ''}`);
    }
    for (const n of s.notes) lines.push(`  note: ${plain(n)}`);
    lines.push('');
  }
  if (report.screenings.length === 0) lines.push('No purposes declared.');
  return lines.join('\n');
}
