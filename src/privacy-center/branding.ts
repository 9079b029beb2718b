import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { CustodianError, JURISDICTION_CODE_PATTERN, REQUEST_TYPES, type RequestType } from '../core/index.js';

/** Languages the privacy center page and its sign-in mail are translated into. */
export const PRIVACY_CENTER_LANGUAGES = ['en', 'de'] as const;
export type PrivacyCenterLanguage = (typeof PRIVACY_CENTER_LANGUAGES)[number];

const colour = z.string().regex(/^#[0-9a-fA-F]{6}$/, 'a colour is #rrggbb');

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
  })
  .strict();

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
  });
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
