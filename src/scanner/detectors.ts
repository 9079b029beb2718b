import type { ColumnKind } from '../connectors/index.js';
import {
  NATIONAL_ID_VALIDATORS,
  isBrazilianCpf,
  isCanadianSin,
  isCreditCardNumber,
  isDutchBsn,
  isEmail,
  isFrenchNir,
  isIban,
  isIpAddress,
  isPersonName,
  isPhoneNumber,
  isPlausibleBirthDate,
  isPostalCode,
  isSpanishDni,
  isStreetAddress,
  isUkNino,
  isUsSsn,
  type NationalIdKind,
} from './validators.js';

/** What a detector recognises in a column. */
export type DetectorKind =
  | 'email'
  | 'phone_number'
  | 'ip_address'
  | 'credit_card'
  | 'iban'
  | 'national_id'
  | 'date_of_birth'
  | 'first_name'
  | 'last_name'
  | 'name'
  | 'postal_address'
  | 'street_address'
  | 'postal_code'
  | 'city'
  | 'free_text';

/**
 * The fideslang data category each detector proposes (ethyca/fideslang `data_files/data_categories.csv`;
 * every key exists in fideslang 3.x).
 */
export const DETECTOR_CATEGORIES: Readonly<Record<DetectorKind, string>> = Object.freeze({
  email: 'user.contact.email',
  phone_number: 'user.contact.phone_number',
  ip_address: 'user.device.ip_address',
  credit_card: 'user.financial.credit_card',
  iban: 'user.financial.bank_account',
  national_id: 'user.government_id.national_identification_number',
  date_of_birth: 'user.demographic.date_of_birth',
  first_name: 'user.name.first',
  last_name: 'user.name.last',
  name: 'user.name',
  postal_address: 'user.contact.address',
  street_address: 'user.contact.address.street',
  postal_code: 'user.contact.address.postal_code',
  city: 'user.contact.address.city',
  free_text: 'user.content.private',
});

/** Identity markers proposed for the detector's columns when the column is unique (a lookup key). */
export const DETECTOR_IDENTITIES: Readonly<Partial<Record<DetectorKind, string>>> = Object.freeze({ email: 'email', phone_number: 'phone_number' });

/** How the column's name speaks for a detector. */
export type NameSignal = 'strong' | 'none' | 'negative';

/** What a detector knows about the column it is judging (the values are judged one by one). */
export interface ColumnContext {
  readonly tokens: readonly string[];
  readonly tableTokens: readonly string[];
  readonly kind: ColumnKind;
  readonly signal: NameSignal;
  readonly now: Date;
}

/**
 * A detector: name signals (token sequences of the column name) and negative tokens that mark look-alikes
 * (`email_template`, `phone_model`), the storage kinds it looks at, a value test, and how much the values
 * must agree before it fires.
 */
export interface Detector {
  readonly kind: DetectorKind;
  readonly names: readonly (readonly string[])[];
  readonly negatives: readonly string[];
  readonly kinds: readonly ColumnKind[];
  /** The value test; `ctx.signal` lets a test accept looser forms when the name already says what it is. */
  readonly test: (value: string, ctx: ColumnContext) => boolean;
  /**
   * `strict`: the value test is specific enough to fire on values alone (checksums, exact syntax);
   * `named`: values alone prove nothing (any capitalised word looks like a name), a name signal is needed.
   */
  readonly evidence: 'strict' | 'named';
  /** With a name signal: the smallest share of non-empty values that must pass (default 0.5). */
  readonly namedRatio?: number;
  /** When firing on values alone: the smallest share of non-empty values that must pass. */
  readonly valueOnlyRatio?: number;
  /** When firing on values alone: the fewest non-empty values sampled. */
  readonly valueOnlyMinSamples?: number;
}

const TEXTUAL: readonly ColumnKind[] = ['text', 'other'];
const NUMERIC_OR_TEXT: readonly ColumnKind[] = ['text', 'integer', 'decimal', 'other'];

/** Tokens that describe data about an attribute rather than the attribute itself. */
const META = ['verified', 'confirmed', 'status', 'count', 'enabled', 'disabled', 'flag', 'type', 'hash', 'hashed', 'token', 'opt', 'optin', 'consent', 'format', 'template', 'id', 'ids', 'uuid', 'ref', 'key', 'pattern', 'regex', 'label', 'placeholder'];

/** Splits `customerEmail`, `customer_email`, `Customer-E-Mail` into lower-case tokens. */
export function nameTokens(name: string): string[] {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1_$2')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter(Boolean);
}

function hasSequence(tokens: readonly string[], seq: readonly string[]): boolean {
  outer: for (let i = 0; i + seq.length <= tokens.length; i++) {
    for (let j = 0; j < seq.length; j++) if (tokens[i + j] !== seq[j]) continue outer;
    return true;
  }
  return false;
}

/** Tables whose rows are people: a bare `name` column there is a person's name. */
const PERSON_TABLES = new Set([
  'user', 'users', 'customer', 'customers', 'client', 'clients', 'member', 'members', 'person', 'persons', 'people', 'contact', 'contacts',
  'employee', 'employees', 'staff', 'patient', 'patients', 'student', 'students', 'subscriber', 'subscribers', 'guest', 'guests',
  'passenger', 'passengers', 'applicant', 'applicants', 'candidate', 'candidates', 'lead', 'leads', 'profile', 'profiles', 'recipient',
  'recipients', 'account', 'accounts', 'driver', 'drivers', 'author', 'authors', 'buyer', 'buyers', 'seller', 'sellers', 'owner', 'owners',
  'participant', 'participants', 'volunteer', 'volunteers', 'donor', 'donors', 'beneficiary', 'beneficiaries', 'tenant_contacts',
]);

const NATIONAL_ID_NAMES: readonly (readonly string[])[] = [
  ['ssn'], ['social', 'security'], ['socialsecuritynumber'], ['nino'], ['national', 'insurance'], ['bsn'], ['burgerservicenummer'],
  ['cpf'], ['sin'], ['social', 'insurance'], ['nir'], ['insee'], ['secu'], ['dni'], ['nie'], ['nif'], ['national', 'id'], ['nationalid'],
  ['national', 'identifier'], ['national', 'number'], ['tax', 'id'], ['taxpayer', 'id'], ['personal', 'id', 'number'], ['id', 'number'],
  ['citizen', 'id'], ['identity', 'number'], ['personnummer'], ['codice', 'fiscale'],
];

/** Any national identifier validator; with a name signal, nine bare digits pass as a US SSN too. */
function isNationalId(value: string, ctx: ColumnContext): boolean {
  return nationalIdKind(value, ctx) !== undefined;
}

/** Which national identifier `value` is, checksum schemes first (they are the more specific). */
export function nationalIdKind(value: string, ctx: Pick<ColumnContext, 'signal'>): NationalIdKind | undefined {
  const v = value.trim();
  if (isBrazilianCpf(v)) return 'br_cpf';
  if (isFrenchNir(v)) return 'fr_nir';
  if (isSpanishDni(v)) return 'es_dni';
  if (isUkNino(v)) return 'uk_nino';
  if (isDutchBsn(v)) return 'nl_bsn';
  if (isCanadianSin(v)) return 'ca_sin';
  if (isUsSsn(v, ctx.signal === 'strong')) return 'us_ssn';
  return undefined;
}

/** Personal data embedded in running text: e-mail addresses, international phone numbers, card numbers, IBANs, national ids. */
export function containsPersonalData(text: string): boolean {
  // Cheap guards first: most values have no '@', no '+' and no two digits in a row.
  if (text.length < 8) return false;
  const at = text.includes('@');
  const plus = text.includes('+');
  const digitRun = /\d\d/.test(text);
  if (!at && !plus && !digitRun) return false;
  if (at) for (const m of text.matchAll(/[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+/g)) if (isEmail(m[0].replace(/\.$/, ''))) return true;
  if (plus) for (const m of text.matchAll(/\+\d[\d ().-]{6,18}\d/g)) if (isPhoneNumber(m[0], true)) return true;
  if (!digitRun) return false;
  for (const m of text.matchAll(/\b\d(?:[ -]?\d){12,18}\b/g)) if (isCreditCardNumber(m[0])) return true;
  for (const m of text.matchAll(/\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b/g)) if (isIban(m[0])) return true;
  for (const m of text.matchAll(/\b\d{3}-\d{2}-\d{4}\b|\b\d{3}\.\d{3}\.\d{3}-\d{2}\b|\b[A-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b/g)) {
    if (isUsSsn(m[0]) || isBrazilianCpf(m[0]) || isUkNino(m[0])) return true;
  }
  return false;
}

/** The detectors, most specific first: on a tie in confidence the earlier one wins. */
export const DETECTORS: readonly Detector[] = Object.freeze([
  {
    kind: 'email',
    names: [['email'], ['e', 'mail'], ['mail'], ['emailaddress'], ['mail', 'address'], ['mailaddress']],
    negatives: [...META, 'subject', 'body', 'sent', 'domain', 'provider', 'bounce', 'bounced', 'campaign', 'frequency', 'preference', 'preferences', 'server', 'host', 'queue', 'log', 'message', 'content', 'html', 'text', 'reminder', 'notification', 'notifications'],
    kinds: TEXTUAL,
    test: (v) => isEmail(v.trim()),
    evidence: 'strict',
    valueOnlyRatio: 0.8,
    valueOnlyMinSamples: 3,
  },
  {
    kind: 'credit_card',
    names: [['card', 'number'], ['cardnumber'], ['cc', 'number'], ['ccnumber'], ['credit', 'card'], ['creditcard'], ['pan'], ['card', 'no'], ['card', 'num'], ['debit', 'card']],
    negatives: [...META, 'last4', 'last', 'four', 'brand', 'expiry', 'exp', 'expires', 'holder', 'fingerprint', 'bin', 'country', 'issuer', 'masked'],
    kinds: NUMERIC_OR_TEXT,
    test: (v) => isCreditCardNumber(v.trim()),
    evidence: 'strict',
    valueOnlyRatio: 0.8,
    valueOnlyMinSamples: 5,
  },
  {
    kind: 'iban',
    names: [['iban'], ['bank', 'account'], ['bankaccount'], ['account', 'iban']],
    negatives: [...META, 'country', 'bank', 'name', 'holder', 'bic', 'swift', 'masked', 'last4'],
    kinds: TEXTUAL,
    test: (v) => isIban(v.trim()),
    evidence: 'strict',
    valueOnlyRatio: 0.8,
    valueOnlyMinSamples: 3,
  },
  {
    kind: 'national_id',
    names: NATIONAL_ID_NAMES,
    negatives: [...META.filter((t) => t !== 'id'), 'country', 'issuer', 'masked', 'last4', 'expiry', 'expires', 'issued'],
    kinds: NUMERIC_OR_TEXT,
    test: isNationalId,
    evidence: 'strict',
    // Nine-digit checksums pass for ~10 % of random numbers: values alone must nearly all pass.
    valueOnlyRatio: 0.95,
    valueOnlyMinSamples: 20,
  },
  {
    kind: 'ip_address',
    names: [['ip'], ['ipaddr'], ['ipaddress'], ['ip', 'address'], ['ipv4'], ['ipv6'], ['remote', 'addr'], ['remote', 'address'], ['client', 'ip'], ['last', 'ip'], ['source', 'ip'], ['x', 'forwarded', 'for']],
    negatives: [...META, 'allowlist', 'whitelist', 'blocklist', 'blacklist', 'comment', 'comments', 'note', 'notes', 'range', 'ranges', 'cidr', 'country', 'version', 'subnet', 'description'],
    kinds: ['text', 'network', 'other'],
    test: (v) => isIpAddress(v.trim()),
    evidence: 'strict',
    valueOnlyRatio: 0.9,
    valueOnlyMinSamples: 3,
  },
  {
    kind: 'phone_number',
    names: [['phone'], ['telephone'], ['tel'], ['mobile'], ['cell'], ['cellphone'], ['msisdn'], ['fax'], ['whatsapp'], ['phonenumber'], ['mobilenumber'], ['phone', 'no'], ['contact', 'number']],
    negatives: [...META, 'model', 'brand', 'make', 'os', 'country', 'code', 'prefix', 'extension', 'carrier', 'plan', 'imei', 'area', 'operator', 'manufacturer'],
    kinds: NUMERIC_OR_TEXT,
    test: (v, ctx) => isPhoneNumber(v.trim(), ctx.signal !== 'strong'),
    evidence: 'strict',
    valueOnlyRatio: 0.9,
    valueOnlyMinSamples: 5,
  },
  {
    kind: 'date_of_birth',
    names: [['birth'], ['dob'], ['birthday'], ['birthdate'], ['born'], ['dateofbirth'], ['geboortedatum'], ['date', 'naissance']],
    negatives: [...META, 'place', 'country', 'city', 'name', 'reminder', 'notify', 'notification', 'certificate', 'year'],
    kinds: ['date', 'timestamp', 'text', 'other'],
    test: (v, ctx) => isPlausibleBirthDate(v, ctx.now),
    evidence: 'named',
  },
  {
    kind: 'first_name',
    names: [['first', 'name'], ['firstname'], ['given', 'name'], ['givenname'], ['forename'], ['fname'], ['voornaam'], ['prenom']],
    negatives: [...META],
    kinds: TEXTUAL,
    test: (v) => isPersonName(v),
    evidence: 'named',
  },
  {
    kind: 'last_name',
    names: [['last', 'name'], ['lastname'], ['surname'], ['family', 'name'], ['familyname'], ['lname'], ['achternaam']],
    negatives: [...META],
    kinds: TEXTUAL,
    test: (v) => isPersonName(v),
    evidence: 'named',
  },
  {
    kind: 'name',
    names: [['full', 'name'], ['fullname'], ['display', 'name'], ['legal', 'name'], ['contact', 'name'], ['customer', 'name'], ['cardholder'], ['card', 'holder'], ['holder', 'name'], ['account', 'holder'], ['patient', 'name'], ['person', 'name'], ['recipient', 'name'], ['billing', 'name'], ['shipping', 'name'], ['middle', 'name'], ['maiden', 'name']],
    negatives: [...META, 'product', 'file', 'filename', 'company', 'business', 'org', 'organization', 'organisation', 'host', 'domain', 'table', 'column', 'brand', 'item', 'category', 'tag', 'role', 'group', 'team', 'event', 'campaign', 'app', 'device', 'bank', 'street', 'city', 'country', 'template', 'model', 'plan', 'schema', 'server', 'project', 'service', 'user', 'username', 'screen'],
    kinds: TEXTUAL,
    test: (v) => isPersonName(v),
    evidence: 'named',
  },
  {
    kind: 'postal_address',
    names: [['address'], ['addr'], ['home', 'address'], ['mailing', 'address'], ['postal', 'address'], ['billing', 'address'], ['shipping', 'address'], ['residence'], ['adres'], ['adresse']],
    negatives: [...META, 'ip', 'email', 'e', 'mail', 'mac', 'web', 'url', 'wallet', 'contract', 'memory', 'server', 'host', 'bitcoin', 'eth', 'crypto', 'line', 'line1', 'line2', 'street', 'book', 'bar', 'country', 'city', 'remote'],
    kinds: TEXTUAL,
    test: (v) => isStreetAddress(v),
    evidence: 'named',
  },
  {
    kind: 'street_address',
    names: [['street'], ['street', 'address'], ['address', 'line'], ['address', 'line1'], ['address', 'line2'], ['address1'], ['address2'], ['addr', 'line'], ['addr1'], ['line1'], ['street', 'line'], ['straat']],
    negatives: [...META, 'ip', 'email', 'mac', 'web', 'url', 'wallet', 'view', 'level', 'light', 'lights'],
    kinds: TEXTUAL,
    test: (v) => isStreetAddress(v),
    evidence: 'named',
  },
  {
    kind: 'postal_code',
    names: [['postcode'], ['postal', 'code'], ['postalcode'], ['zip'], ['zipcode'], ['zip', 'code'], ['plz'], ['postcode'], ['post', 'code']],
    negatives: [...META, 'file', 'archive', 'compressed', 'country', 'warehouse', 'store', 'office'],
    kinds: ['text', 'integer', 'other'],
    test: (v) => isPostalCode(v),
    evidence: 'named',
  },
  {
    kind: 'city',
    names: [['city'], ['town'], ['municipality'], ['locality'], ['woonplaats'], ['ville']],
    negatives: [...META, 'code', 'country', 'warehouse', 'store', 'office', 'hq', 'capital', 'count'],
    kinds: TEXTUAL,
    test: (v) => isPersonName(v),
    evidence: 'named',
  },
  {
    kind: 'free_text',
    names: [['notes'], ['note'], ['comment'], ['comments'], ['remarks'], ['remark'], ['message'], ['body'], ['bio'], ['about'], ['feedback'], ['content'], ['text'], ['details'], ['description'], ['reason'], ['memo'], ['transcript'], ['summary'], ['answer'], ['question']],
    negatives: [...META, 'template', 'html', 'type', 'status', 'length', 'count', 'format', 'subject', 'title'],
    kinds: ['text', 'json', 'other'],
    test: (v) => containsPersonalData(v),
    evidence: 'strict',
    // Notes that name a person in one row of twenty are personal data all the same.
    namedRatio: 0.05,
    valueOnlyRatio: 0.3,
    valueOnlyMinSamples: 10,
  },
] satisfies Detector[]);

/** The name signal of `detector` for a column named by `tokens` in a table named by `tableTokens`. */
export function nameSignal(detector: Detector, tokens: readonly string[], tableTokens: readonly string[]): NameSignal {
  if (tokens.some((t) => detector.negatives.includes(t))) return 'negative';
  if (detector.names.some((seq) => hasSequence(tokens, seq))) return 'strong';
  // A bare `name` column names a person only in a table of people.
  if (detector.kind === 'name' && tokens.length === 1 && tokens[0] === 'name' && tableTokens.some((t) => PERSON_TABLES.has(t))) return 'strong';
  return 'none';
}

export { NATIONAL_ID_VALIDATORS };
