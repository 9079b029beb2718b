import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { CustodianError, JURISDICTION_CODE_PATTERN, PURPOSE_KEY_PATTERN, REQUEST_TYPES, isStorableText, type RequestType } from '../core/index.js';

/** Languages the privacy center page and its sign-in mail are translated into. */
export const PRIVACY_CENTER_LANGUAGES = ['en', 'de'] as const;
export type PrivacyCenterLanguage = (typeof PRIVACY_CENTER_LANGUAGES)[number];

const colour = z.string().regex(/^#[0-9a-fA-F]{6}$/, 'a colour is #rrggbb');
const text = (min: number, max: number) => z.string().min(min).max(max).refine(isStorableText, 'must be well-formed Unicode without NUL characters');

/** A purpose's title and description in one language; either may be left out (it then falls back). */
const purposeText = z
  .object({ title: text(1, 200).optional(), description: text(0, 4000).optional() })
  .strict()
  .refine((t) => t.title !== undefined || t.description !== undefined, 'give a title, a description or both');

/**
 * Translations of the purposes' texts: `{ "<purpose key>": { "<language>": { "title", "description" } } }`.
 * Keys are not checked against the purposes (the data map may add them later); languages must be the page's.
 */
const purposeTranslations = z
  .record(z.string(), z.record(z.string(), purposeText))
  .superRefine((purposes, ctx) => {
    for (const [key, byLanguage] of Object.entries(purposes)) {
      // Checked here rather than as the record's key schema, whose issue would not say what is wrong.
      if (key.length > 128 || !PURPOSE_KEY_PATTERN.test(key)) ctx.addIssue({ code: 'custom', path: [key], message: 'not a purpose key (lower-case words separated by dots, e.g. analytics.reporting)' });
      for (const language of Object.keys(byLanguage)) {
        if (!(PRIVACY_CENTER_LANGUAGES as readonly string[]).includes(language)) {
          ctx.addIssue({ code: 'custom', path: [key, language], message: `"${language.slice(0, 20)}" is not a language of the privacy center (${PRIVACY_CENTER_LANGUAGES.join(', ')})` });
        }
      }
    }
  });

/** The schema of the branding file (`privacy-center.json`); every field is optional. */
export const brandingSchema = z
  .object({
    name: z.string().min(1).max(100).optional(),
    logoUrl: z.url({ protocol: /^https?$/ }).max(2000).nullable().optional(),
    colors: z
      .object({ primary: colour.optional(), primaryText: colour.optional(), background: colour.optional(), text: colour.optional(), focus: colour.optional() })
      .strict()
      .optional(),
    languages: z.array(z.enum(PRIVACY_CENTER_LANGUAGES)).min(1).optional(),
    defaultLanguage: z.enum(PRIVACY_CENTER_LANGUAGES).optional(),
    jurisdiction: z.string().max(16).regex(JURISDICTION_CODE_PATTERN).optional(),
    jurisdictions: z.array(z.string().max(16).regex(JURISDICTION_CODE_PATTERN)).min(1).max(50).optional(),
    requestTypes: z.array(z.enum(REQUEST_TYPES)).min(1).optional(),
    privacyPolicyUrl: z.url({ protocol: /^https?$/ }).max(2000).nullable().optional(),
    purposes: purposeTranslations.optional(),
  })
  .strict();

/** A purpose's texts in one language, as configured (either may be missing). */
export interface PurposeText {
  readonly title?: string;
  readonly description?: string;
}

/** The privacy center's branding and offer, with defaults filled in. */
export interface Branding {
  readonly name: string;
  readonly logoUrl: string | null;
  readonly colors: { readonly primary: string; readonly primaryText: string; readonly background: string; readonly text: string; readonly focus: string };
  readonly languages: readonly PrivacyCenterLanguage[];
  readonly defaultLanguage: PrivacyCenterLanguage;
  /** The jurisdiction used for consent (offered purposes, GPC) and the default for new requests. */
  readonly jurisdiction: string;
  /** Jurisdictions the person may pick for a request. */
  readonly jurisdictions: readonly string[];
  readonly requestTypes: readonly RequestType[];
  readonly privacyPolicyUrl: string | null;
  /** Translated purpose texts per purpose key and language (see {@link purposeTextIn}). */
  readonly purposes: Readonly<Record<string, Readonly<Partial<Record<PrivacyCenterLanguage, PurposeText>>>>>;
}

/**
 * The defaults: colours pass WCAG 2.1 AA (4.5:1) for text on the background and on the primary colour.
 * Request types are those the page offers; the jurisdiction still decides which rights exist.
 */
export const DEFAULT_BRANDING: Branding = Object.freeze({
  name: 'Privacy center',
  logoUrl: null,
  colors: Object.freeze({ primary: '#1d4ed8', primaryText: '#ffffff', background: '#ffffff', text: '#1f2937', focus: '#b45309' }),
  languages: Object.freeze([...PRIVACY_CENTER_LANGUAGES]),
  defaultLanguage: 'en',
  jurisdiction: 'EU',
  jurisdictions: Object.freeze(['EU']),
  requestTypes: Object.freeze<RequestType[]>(['access', 'portability', 'erasure', 'rectification', 'opt_out']),
  privacyPolicyUrl: null,
  purposes: Object.freeze({}),
});

/** Fills `input` (the parsed branding file) with the defaults; CST_ERR_CONFIG when it does not match the schema. */
export function resolveBranding(input: unknown): Branding {
  const parsed = brandingSchema.safeParse(input ?? {});
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
    throw new CustodianError('CST_ERR_CONFIG', 'the privacy center configuration file does not match its schema', { details: { setting: 'CUSTODIAN_PRIVACY_CENTER_CONFIG', issues } });
  }
  const b = parsed.data;
  const jurisdiction = b.jurisdiction ?? b.jurisdictions?.[0] ?? DEFAULT_BRANDING.jurisdiction;
  const languages = b.languages ?? DEFAULT_BRANDING.languages;
  return Object.freeze({
    name: b.name ?? DEFAULT_BRANDING.name,
    logoUrl: b.logoUrl ?? null,
    colors: Object.freeze({ ...DEFAULT_BRANDING.colors, ...b.colors }),
    languages: Object.freeze([...languages]),
    defaultLanguage: b.defaultLanguage ?? languages[0] ?? 'en',
    jurisdiction,
    jurisdictions: Object.freeze(b.jurisdictions ?? [jurisdiction]),
    requestTypes: Object.freeze(b.requestTypes ?? DEFAULT_BRANDING.requestTypes),
    privacyPolicyUrl: b.privacyPolicyUrl ?? null,
    purposes: Object.freeze(Object.fromEntries(Object.entries(b.purposes ?? {}).map(([key, t]) => [key, Object.freeze(t as Partial<Record<PrivacyCenterLanguage, PurposeText>>)]))),
  });
}

/**
 * The title and description of a purpose in `language`: the branding's translation for that language, else its
 * English one, else the data map's own text (written in English by convention). Each text falls back on its own.
 */
export function purposeTextIn(branding: Branding, purpose: { readonly key: string; readonly title: string; readonly description: string }, language: PrivacyCenterLanguage): { title: string; description: string } {
  const t = branding.purposes[purpose.key];
  return {
    title: t?.[language]?.title ?? t?.en?.title ?? purpose.title,
    description: t?.[language]?.description ?? t?.en?.description ?? purpose.description,
  };
}

/** Reads and resolves the branding file at `path`, or the defaults when there is none. */
export async function loadBranding(path: string | undefined): Promise<Branding> {
  if (path === undefined) return DEFAULT_BRANDING;
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    throw new CustodianError('CST_ERR_CONFIG', 'the privacy center configuration file cannot be read', { details: { setting: 'CUSTODIAN_PRIVACY_CENTER_CONFIG' }, cause });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new CustodianError('CST_ERR_CONFIG', 'the privacy center configuration file is not JSON', { details: { setting: 'CUSTODIAN_PRIVACY_CENTER_CONFIG' }, cause });
  }
  return resolveBranding(json);
}
