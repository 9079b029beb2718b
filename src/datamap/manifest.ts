import { z } from 'zod';
import {
  COUNTRY_CODE_PATTERN,
  JURISDICTION_CODE_PATTERN,
  LEGAL_BASIS_KEYS,
  PURPOSE_KEY_PATTERN,
  RETENTION_PERIOD_PATTERN,
  SPECIAL_CATEGORY_CONDITION_KEYS,
  TRANSFER_MECHANISM_KEYS,
  isStorableText,
} from '../core/index.js';

/**
 * The data map manifest, format version 1: one declaration of where personal data lives and why
 * (docs/datamap.md is the reference). This module holds the shape only; {@link validateManifest} in
 * `validate.ts` checks what a schema cannot (taxonomy keys, references, cycles, transfers, …).
 */

const text = (max = 4000) => z.string().max(max).refine(isStorableText, 'must be well-formed Unicode without NUL characters');
const name = (max = 200) => text(max).min(1);
/** Keys of systems and datasets: lower-case identifiers, unique across the manifest. */
export const KEY_PATTERN = /^[a-z][a-z0-9_-]*$/;
const key = () => z.string().min(1).max(128).regex(KEY_PATTERN, 'must be a lower-case identifier: letters, digits, _ and -, starting with a letter');
/** Collection and field names as the system spells them (table and column names may be mixed case). */
export const NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_$-]*$/;
const ident = () => z.string().min(1).max(128).regex(NAME_PATTERN, 'must be a name of letters, digits, _, $ and -');
/** A fideslang taxonomy key such as `user.contact.email`; checked against the taxonomy by the validator. */
const taxonomyKey = () => z.string().min(1).max(200).regex(/^[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)*$/, 'must be a dotted taxonomy key');
const period = () => z.string().regex(RETENTION_PERIOD_PATTERN, 'must be an ISO 8601 duration such as P30D, P13M or P2Y');
const country = () => z.string().regex(COUNTRY_CODE_PATTERN, 'must be an ISO 3166-1 alpha-2 country code such as DE or US');
const purposeKey = () => z.string().min(1).max(128).regex(PURPOSE_KEY_PATTERN, 'must be a purpose key such as marketing.email');

/** Identity markers a field may carry; any other lower-case identifier is a custom identity. */
export const BUILTIN_IDENTITIES = ['email', 'phone_number', 'user_id'] as const;

export const ERASURE_STRATEGIES = ['delete_row', 'null', 'mask', 'hash', 'retain'] as const;
export type ErasureStrategy = (typeof ERASURE_STRATEGIES)[number];

const erasureSchema = z.union([
  // YAML reads a bare `null` as no value: say so rather than "invalid option".
  z.null().transform((_v, ctx) => {
    ctx.addIssue({ code: 'custom', message: "YAML reads a bare null as no value: write the strategy as 'null' (quoted)" });
    return z.NEVER;
  }),
  z.enum(['delete_row', 'null', 'hash']).transform((strategy) => ({ strategy })),
  z.object({ strategy: z.enum(['delete_row', 'null', 'hash']) }).strict(),
  z.object({ strategy: z.literal('mask'), value: text(500).describe('The fixed string written instead of the value.') }).strict(),
  z
    .object({
      strategy: z.literal('retain'),
      legalBasis: z.enum(LEGAL_BASIS_KEYS).describe('Why the value may be kept despite an erasure request (GDPR Art. 17(3)).'),
      reason: name(1000),
      retention: period().describe('How long it is kept; retention rules delete it afterwards.'),
    })
    .strict(),
]);
export type Erasure = { strategy: 'delete_row' | 'null' | 'hash' } | { strategy: 'mask'; value: string } | { strategy: 'retain'; legalBasis: (typeof LEGAL_BASIS_KEYS)[number]; reason: string; retention: string };

const referenceSchema = z
  .object({
    field: z
      .string()
      .min(3)
      .max(600)
      .regex(/^[a-z][a-z0-9_-]*\.[^.\s]+(?:\.[^.\s]+)+$/, 'must be <dataset>.<collection>.<field>[.<subfield>…]')
      .describe('The referenced field, `<dataset>.<collection>.<field>`; datasets are unique across systems.'),
    direction: z.enum(['to', 'from']).optional().describe('As in fideslang: `to` = this field’s value finds rows there; `from` = that field’s value finds rows here. Omitted: both.'),
    ownership: z
      .enum(['owner', 'shared', 'mention'])
      .optional()
      .describe(
        'Whose rows the reference reaches. owner (default): rows found through it are the subject’s own. shared: they may also belong to other subjects (an address two customers share): access includes them, erasure removes them only when no other subject still refers to them. mention: they belong to someone else and only mention the subject (a ticket an employee handled): access shows only the referencing field, erasure touches only that field.',
      ),
  })
  .strict();
export type Reference = z.output<typeof referenceSchema>;

export interface Field {
  readonly name: string;
  readonly description?: string | undefined;
  readonly dataCategories: readonly string[];
  readonly identity?: string | undefined;
  readonly indexed?: boolean | undefined;
  readonly primaryKey?: boolean | undefined;
  readonly dataType?: string | undefined;
  readonly length?: number | undefined;
  readonly references: readonly Reference[];
  readonly erasure?: Erasure | undefined;
  readonly fields: readonly Field[];
}

const fieldSchema: z.ZodType<Field, unknown> = z.lazy(() =>
  z
    .object({
      name: ident(),
      description: text().optional(),
      dataCategories: z.array(taxonomyKey()).max(50).default([]),
      identity: z
        .string()
        .max(64)
        .regex(/^[a-z][a-z0-9_]*$/, 'must be email, phone_number, user_id or a custom lower-case identifier')
        .optional()
        .describe('Marks a field that identifies the subject: requests start from these.'),
      indexed: z.boolean().optional().describe('Index hint: whether lookups by this field use an index (required on identity fields).'),
      primaryKey: z.boolean().optional(),
      dataType: z.string().max(64).optional().describe('fideslang data_type (string, integer, object[], …).'),
      length: z.number().int().positive().optional(),
      references: z.array(referenceSchema).max(50).default([]),
      erasure: erasureSchema.optional().describe('What erasure does to this field; inherits the collection default.'),
      fields: z.array(fieldSchema).max(500).default([]),
    })
    .strict(),
);

const retentionRuleSchema = z
  .object({
    field: ident().describe('The age field: a timestamp column.'),
    period: period(),
    action: z.enum(['delete', 'anonymise']).default('delete'),
    fields: z.array(ident()).max(200).optional().describe('For anonymise: the fields to anonymise with their erasure strategy.'),
    description: text().optional(),
  })
  .strict();

const collectionSchema = z
  .object({
    name: ident(),
    description: text().optional(),
    dataSubjects: z.array(taxonomyKey()).max(20).default([]).describe('Whom the rows are about (fideslang data subjects).'),
    purposes: z.array(purposeKey()).max(100).default([]),
    erasure: erasureSchema.optional().describe('Default erasure strategy of the fields.'),
    retention: z.array(retentionRuleSchema).max(20).default([]),
    connector: z
      .record(z.string().regex(/^[a-zA-Z][a-zA-Z0-9_]*$/), z.string().max(1000))
      .optional()
      .describe('Connector-specific settings (Redis keyPattern and type, JSONL file, HTTP path); see docs/requests.md.'),
    fields: z.array(fieldSchema).min(1).max(2000),
  })
  .strict();

const datasetSchema = z
  .object({
    key: key(),
    name: name().optional(),
    description: text().optional(),
    collections: z.array(collectionSchema).min(1).max(2000),
  })
  .strict();

const partySchema = z
  .object({
    name: name(),
    type: z.enum(['processor', 'controller', 'joint_controller', 'public_authority', 'internal']).default('processor'),
    country: country().optional(),
    purposes: z.array(purposeKey()).max(100).default([]),
    dataCategories: z.array(taxonomyKey()).max(100).default([]),
    contract: text(500).optional().describe('Reference of the DPA or contract (GDPR Art. 28(3)).'),
  })
  .strict();

const transferSchema = z
  .object({
    country: country(),
    recipient: name().optional(),
    mechanism: z.enum(TRANSFER_MECHANISM_KEYS).optional(),
    reference: text(500).optional().describe('Where the safeguard is documented (contract id, BCR approval, DPF listing).'),
    dataCategories: z.array(taxonomyKey()).max(100).default([]),
  })
  .strict();

const systemSchema = z
  .object({
    key: key(),
    name: name(),
    owner: name().describe('Team or person accountable (a role, not a private person’s contact details).'),
    description: text().optional(),
    connection: z
      .string()
      .max(2000)
      .optional()
      .describe('postgres://, mysql://, sqlite:, redis://, jsonl:, https://; secrets as ${ENV} references only.'),
    residency: z.object({ country: country(), region: text(100).optional() }).strict().optional(),
    purposes: z.array(purposeKey()).max(100).default([]),
    recipients: z.array(partySchema).max(200).default([]),
    transfers: z.array(transferSchema).max(200).default([]),
    securityMeasures: z.array(name(500)).max(100).default([]),
    datasets: z.array(datasetSchema).max(500).default([]),
  })
  .strict();

const purposeSchema = z
  .object({
    key: purposeKey(),
    title: name(),
    description: text().default(''),
    legalBasis: z.enum(LEGAL_BASIS_KEYS).optional(),
    legitimateInterest: text(2000).optional().describe('The interest pursued, when the basis is legitimate interests (Art. 13(1)(d)).'),
    specialCategoryCondition: z.enum(SPECIAL_CATEGORY_CONDITION_KEYS).optional(),
    consentRequired: z.boolean().optional(),
    retention: period().optional(),
    consentExpiryMonths: z.number().int().min(1).max(120).nullable().optional().describe('How long a grant lasts (default 13 months for consent).'),
    dataUses: z.array(taxonomyKey()).max(50).default([]),
    dataSubjects: z.array(taxonomyKey()).max(50).default([]),
    jurisdictions: z.array(z.union([z.literal('*'), z.string().max(16).regex(JURISDICTION_CODE_PATTERN)])).min(1).max(100).default(['*']),
    gpcOptOut: z.boolean().default(false),
    dpia: z
      .object({
        criteria: z.array(z.string().max(64)).max(9).default([]).describe('WP248 criteria met, declared by the team (added to the ones derived).'),
        reference: text(500).optional().describe('Where the DPIA is, when one was carried out.'),
      })
      .strict()
      .optional(),
  })
  .strict();

const organizationSchema = z
  .object({
    name: name(),
    address: text(1000).optional(),
    contact: text(500).optional().describe('Contact details of the controller (GDPR Art. 30(1)(a)).'),
    representative: text(500).optional(),
    dpo: text(500).optional().describe('Contact details of the data protection officer.'),
    securityMeasures: z.array(name(500)).max(100).default([]),
  })
  .strict();

export const manifestSchema = z
  .object({
    version: z.literal(1).describe('Manifest format version.'),
    organization: organizationSchema,
    purposes: z.array(purposeSchema).max(1000).default([]),
    systems: z.array(systemSchema).max(1000).default([]),
  })
  .strict();

export type Manifest = z.output<typeof manifestSchema>;
export type ManifestInput = z.input<typeof manifestSchema>;
export type Purpose = Manifest['purposes'][number];
export type System = Manifest['systems'][number];
export type Dataset = System['datasets'][number];
export type Collection = Dataset['collections'][number];
export type RetentionRule = Collection['retention'][number];
export type Party = System['recipients'][number];
export type Transfer = System['transfers'][number];
