import { SENSITIVE_CATEGORIES, specialCategoryOf, taxonomyEntry } from '../core/index.js';

/** A message rendered twice: plain text (what the mail outbox sends) and HTML (every value escaped). */
export interface RenderedMessage {
  readonly subject: string;
  readonly text: string;
  readonly html: string;
}

/** The facts a breach notification is drafted from. */
export interface DraftFacts {
  readonly incidentId: string;
  readonly title: string;
  readonly description: string;
  readonly cause: string;
  readonly containmentActions: readonly string[];
  readonly detectedAt: string;
  readonly occurredAt: string | null;
  readonly dataCategories: readonly string[];
  readonly affectedCount: number | null;
  readonly subjectsCount: number | null;
  readonly recordsCount: number | null;
  readonly organization: string;
  /** DPO contact details from the data map organisation (or the organisation's contact when no DPO). */
  readonly dpoContact: string;
  readonly encrypted: boolean;
  readonly keysCompromised: boolean;
  /** Set when the authority notification is later than 72 h after awareness: GDPR Art. 33(1) asks for the reasons. */
  readonly late: boolean;
}

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** A readable name of a data category: its fideslang name, else the key. */
function categoryName(key: string): string {
  return taxonomyEntry('data_category', key)?.name ?? key;
}

/** Likely consequences of the breach, from the categories (GDPR Art. 33(3)(c), Art. 34(2)). */
export function likelyConsequences(categories: readonly string[], encrypted: boolean, keysCompromised: boolean): string[] {
  const out = new Set<string>();
  for (const c of categories) {
    const special = specialCategoryOf(c);
    if (special !== undefined) out.add(`disclosure of ${special.ground}: discrimination, damage to reputation, distress`);
    const sensitive = SENSITIVE_CATEGORIES.find((s) => c === s.key || c.startsWith(s.key + '.'));
    if (sensitive !== undefined) out.add(sensitive.reason.replace(/ \(.*\)$/, ''));
    if (c.startsWith('user.contact')) out.add('unwanted contact, spam and phishing messages that look genuine');
  }
  if (out.size === 0) out.add('loss of confidentiality of the personal data concerned');
  if (encrypted && !keysCompromised) out.add('the data was encrypted and the key is safe: the risk of misuse is low');
  return [...out];
}

const count = (n: number | null) => (n === null ? 'not yet known' : `about ${n}`);

interface Section {
  readonly heading: string;
  readonly lines: readonly string[];
}

function render(subject: string, intro: string, sections: readonly Section[]): RenderedMessage {
  const text = [intro, '', ...sections.flatMap((s) => [s.heading, ...s.lines.map((l) => `  - ${l}`), ''])].join('\n');
  const html = [
    '<!doctype html><html><head><meta charset="utf-8"><title>',
    escapeHtml(subject),
    '</title></head><body>',
    `<p>${escapeHtml(intro)}</p>`,
    ...sections.map((s) => `<h2>${escapeHtml(s.heading)}</h2><ul>${s.lines.map((l) => `<li>${escapeHtml(l)}</li>`).join('')}</ul>`),
    '</body></html>',
  ].join('');
  return { subject, text, html };
}

/**
 * The notification to the supervisory authority with the contents GDPR Art. 33(3) requires: (a) the nature of
 * the breach including the categories and approximate number of data subjects and of records, (b) the DPO's
 * contact, (c) likely consequences, (d) measures taken or proposed; plus, when late, the reasons for the delay
 * (Art. 33(1)). Information not yet known may follow in phases (Art. 33(4)).
 */
export function authorityDraft(f: DraftFacts): RenderedMessage {
  const categories = f.dataCategories.map((c) => `${categoryName(c)} (${c})`);
  return render(`Personal data breach notification — ${f.organization} — incident ${f.incidentId}`, `${f.organization} notifies a personal data breach under GDPR Article 33. Information not yet available will be provided in phases (Article 33(4)).`, [
    {
      heading: '1. Nature of the breach (Art. 33(3)(a))',
      lines: [
        `Summary: ${f.title}`,
        `Description: ${f.description}`,
        `Cause: ${f.cause || 'under investigation'}`,
        `Became aware: ${f.detectedAt}`,
        `Occurred: ${f.occurredAt ?? 'not yet known'}`,
        `Categories of personal data: ${categories.length > 0 ? categories.join('; ') : 'under investigation'}`,
        `Approximate number of data subjects: ${count(f.subjectsCount ?? f.affectedCount)}`,
        `Approximate number of personal data records: ${count(f.recordsCount)}`,
        `Encryption: ${f.encrypted ? (f.keysCompromised ? 'encrypted, but the key was compromised' : 'encrypted; the key was not compromised') : 'not encrypted'}`,
      ],
    },
    { heading: '2. Data protection officer or other contact point (Art. 33(3)(b))', lines: [f.dpoContact] },
    { heading: '3. Likely consequences (Art. 33(3)(c))', lines: likelyConsequences(f.dataCategories, f.encrypted, f.keysCompromised) },
    { heading: '4. Measures taken or proposed (Art. 33(3)(d))', lines: f.containmentActions.length > 0 ? f.containmentActions : ['under way; details will follow'] },
    ...(f.late ? [{ heading: '5. Reasons for the delay (Art. 33(1))', lines: ['This notification is made more than 72 hours after awareness; the reasons are: [to be completed by the controller]'] }] : []),
  ]);
}

/**
 * The message to the people affected (GDPR Art. 34(2)): in clear and plain language, the nature of the breach,
 * the DPO's contact, likely consequences and the measures taken, with what people can do themselves.
 */
export function individualsDraft(f: DraftFacts): RenderedMessage {
  const categories = f.dataCategories.map(categoryName);
  return render(`Important: a security incident involving your personal data — ${f.organization}`, `We are writing to tell you about a security incident at ${f.organization} that involves some of your personal data. We are sorry this happened.`, [
    {
      heading: 'What happened',
      lines: [f.title, `We found out on ${f.detectedAt.slice(0, 10)}.`, ...(categories.length > 0 ? [`The information involved: ${categories.join(', ')}.`] : [])],
    },
    { heading: 'What this could mean for you', lines: likelyConsequences(f.dataCategories, f.encrypted, f.keysCompromised) },
    { heading: 'What we have done', lines: f.containmentActions.length > 0 ? f.containmentActions : ['We stopped the incident and are investigating it.'] },
    { heading: 'What you can do', lines: ['Be careful with messages that ask for your password or payment details, even if they seem to come from us.', 'Change your password if you used it elsewhere.'] },
    { heading: 'Who to contact', lines: [`Our data protection officer: ${f.dpoContact}`] },
  ]);
}
