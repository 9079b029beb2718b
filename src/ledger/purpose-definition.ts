import { z } from 'zod';
import { JURISDICTION_CODE_PATTERN, LEGAL_BASIS_KEYS, PURPOSE_KEY_PATTERN, isStorableText } from '../core/index.js';

const text = () => z.string().refine(isStorableText, 'must be well-formed Unicode without NUL characters');
import type { PurposeInput } from './purpose-registry.js';

/** Fields of a purpose as written by people (API body, purposes file); defaults fill the rest. */
export const purposeDefinitionSchema = z
  .object({
    title: text().min(1).max(200),
    description: text().max(4000).default(''),
    legalBasis: z.enum(LEGAL_BASIS_KEYS),
    consentRequired: z.boolean().optional().describe('Must equal (legalBasis = consent); may be omitted.'),
    defaultExpiryMonths: z.number().int().min(1).max(120).nullable().optional().describe('Default 13 for consent, null otherwise.'),
    jurisdictions: z
      .array(z.union([z.literal('*'), z.string().max(16).regex(JURISDICTION_CODE_PATTERN)]))
      .min(1)
      .max(100)
      .default(['*']),
    gpcOptOut: z.boolean().default(false).describe('Sale, sharing or targeted advertising: GPC opts out.'),
  })
  .strict();

/** A purposes file: `{ purposes: [{ key, title, legalBasis, … }] }` in JSON or YAML. */
export const purposesFileSchema = z
  .object({
    purposes: z
      .array(purposeDefinitionSchema.extend({ key: z.string().min(1).max(128).regex(PURPOSE_KEY_PATTERN) }))
      .min(1)
      .max(1000),
  })
  .strict();

/** Applies the documented defaults to a validated definition. */
export function toPurposeInput(d: z.output<typeof purposeDefinitionSchema>): PurposeInput {
  const isConsent = d.legalBasis === 'consent';
  return {
    title: d.title,
    description: d.description,
    legalBasis: d.legalBasis,
    consentRequired: d.consentRequired ?? isConsent,
    // Grants last 13 months by default (CNIL délibération 2020-091).
    defaultExpiryMonths: d.defaultExpiryMonths === undefined ? (isConsent ? 13 : null) : d.defaultExpiryMonths,
    jurisdictions: d.jurisdictions,
    gpcOptOut: d.gpcOptOut,
  };
}
