/**
 * The data map of the sample shop (docs/sample-app.md explains each choice). The shop database (SQLite,
 * PostgreSQL or MySQL/MariaDB) and the ML training set (JSONL) are always declared; the newsletter (Redis) and the loyalty
 * service (HTTP) only when they exist, so that a demo without them runs to `completed`.
 */

/** Where each system of the sample shop is. */
export interface SampleConnections {
  /** `sqlite:/abs/path/shop.db`, `postgres://…` or `mysql://…` (`mariadb://…`). */
  readonly shop: string;
  /** `jsonl:/abs/dir`: the folder holding `training/events.jsonl`; left out when undefined. */
  readonly training?: string | undefined;
  /** `redis://host:port[/db]` of the newsletter list. */
  readonly newsletter?: string | undefined;
  /** Key prefix of the newsletter keys (test isolation). */
  readonly newsletterPrefix?: string | undefined;
  /** Base URL of the loyalty service's privacy endpoints, e.g. `http://127.0.0.1:4100/privacy`. */
  readonly loyalty?: string | undefined;
}

/** Environment variable holding the loyalty service's shared secret (never written in the manifest). */
export const LOYALTY_SECRET_ENV = 'SAMPLE_LOYALTY_SECRET';

const q = (s: string): string => JSON.stringify(s);

/** The manifest as YAML text, with comments, for `custodian datamap validate|push`. */
export function sampleManifestYaml(connections: SampleConnections): string {
  const newsletterSettings = [`keyPattern: 'newsletter:{email}'`, `type: hash`, `fields: 'email,name,subscribed_at'`, ...(connections.newsletterPrefix ? [`prefix: ${q(connections.newsletterPrefix)}`] : [])].join(', ');
  const newsletter =
    connections.newsletter === undefined
      ? ''
      : `
  - key: newsletter
    name: Newsletter list
    owner: Marketing team
    description: One Redis hash per subscriber, keyed by the e-mail address.
    connection: ${q(connections.newsletter)}
    residency: { country: DE }
    purposes: [marketing.email]
    datasets:
      - key: newsletter_cache
        collections:
          - name: subscribers
            dataSubjects: [customer, prospect]
            purposes: [marketing.email]
            erasure: delete_row                 # consent withdrawn with the person: nothing to keep
            connector: { ${newsletterSettings} }
            fields:
              - { name: email, primaryKey: true, dataCategories: [user.contact.email], identity: email, indexed: true }
              - { name: name, dataCategories: [user.name] }
              - { name: subscribed_at, dataCategories: [system.operations] }
`;
  const loyalty =
    connections.loyalty === undefined
      ? ''
      : `
  - key: loyalty
    name: Loyalty service
    owner: Loyalty team
    description: A microservice holding loyalty points per e-mail address, reached through the Custodian callback protocol.
    connection: ${q(connections.loyalty)}
    residency: { country: DE }
    purposes: [loyalty]
    datasets:
      - key: loyalty_service
        collections:
          - name: accounts
            dataSubjects: [customer]
            purposes: [loyalty]
            erasure: delete_row
            connector: { secretEnv: ${LOYALTY_SECRET_ENV} }   # the shared secret stays in the environment
            # The service offers the protocol's scan and retention operations (its capabilities answer says so).
            retention:
              - { field: last_activity_at, period: P2Y, action: delete, description: Dormant loyalty accounts }
            fields:
              - { name: email, primaryKey: true, dataCategories: [user.contact.email], identity: email, indexed: true }
              - { name: points, dataCategories: [user.behavior.purchase_history] }
              - { name: tier, dataCategories: [user.behavior.purchase_history] }
              - { name: last_activity_at, dataCategories: [system.operations] }
`;
  const training =
    connections.training === undefined
      ? ''
      : `
  - key: ml
    name: Recommendation training set
    owner: Data science team
    description: Shopping events exported for model training, one JSON object per line.
    connection: ${q(connections.training)}
    residency: { country: DE }
    purposes: [recommendations]
    datasets:
      - key: ml_training
        collections:
          - name: events
            dataSubjects: [customer]
            purposes: [recommendations]
            erasure: delete_row                 # the next training run no longer sees the person
            connector: { file: training/events.jsonl, fields: 'event_id,user_id,features,label,at' }
            retention:
              - { field: at, period: P2Y, action: delete }
            fields:
              - { name: event_id, primaryKey: true, dataCategories: [system.operations] }
              - name: user_id
                dataCategories: [user.unique_id]
                references: [{ field: shop_db.customers.id, direction: from }]   # across systems
              - { name: features, dataType: object, dataCategories: [user.behavior.browsing_history] }
              - { name: label, dataCategories: [user.behavior.purchase_history] }
              - { name: at, dataCategories: [system.operations] }
`;
  return `# Data map of the Custodian sample shop (synthetic data only): examples/sample-app, docs/sample-app.md.
# Generated by examples/sample-app/seed.ts; validate with \`custodian datamap validate <this file>\`.
version: 1

organization:
  name: Sample Shop GmbH
  address: Musterstraße 1, 10115 Berlin, Germany
  contact: privacy@sample-shop.example
  dpo: Data Protection Officer, dpo@sample-shop.example
  securityMeasures:
    - Encryption at rest and in transit
    - Role-based access to customer data

purposes:
  - key: orders
    title: Processing orders
    description: Taking, delivering and invoicing orders.
    legalBasis: contract                # GDPR Art. 6(1)(b)
    retention: P10Y                     # invoices: § 147 AO, § 257 HGB
    dataUses: [essential.service.payment_processing]
    dataSubjects: [customer]
  - key: accounts
    title: Customer accounts and sign-in
    legalBasis: contract
    dataUses: [essential.service.authentication]
    dataSubjects: [customer]
  - key: security
    title: Account security
    description: Sign-in history to detect account takeover.
    legalBasis: legitimate_interests
    legitimateInterest: Protecting customers' accounts against takeover and fraud.
    retention: P1Y
    dataUses: [essential.service.security]
  - key: analytics
    title: Shop analytics
    legalBasis: legitimate_interests
    legitimateInterest: Understanding which pages work, in aggregate.
    retention: P14M
    dataUses: [analytics.reporting]
  - key: support
    title: Customer support
    legalBasis: contract
    retention: P3Y
    dataUses: [essential.service.operations.support]
  - key: staff
    title: Support staff directory
    legalBasis: contract                # the employment contract
    dataUses: [employment]
    dataSubjects: [employee]
  - key: marketing.email
    title: Newsletter
    legalBasis: consent
    consentExpiryMonths: 24
    dataUses: [marketing.communications.email]
    dataSubjects: [customer, prospect]
  - key: loyalty
    title: Loyalty programme
    legalBasis: contract
    retention: P2Y                      # storage limitation, GDPR Art. 5(1)(e): accounts close after two years without activity
    dataUses: [essential.service]
    dataSubjects: [customer]
  - key: recommendations
    title: Product recommendations
    description: A model trained on shopping events recommends products.
    legalBasis: legitimate_interests
    legitimateInterest: Recommending products customers are likely to want.
    retention: P2Y
    dataUses: [train_ai_system]
    dpia: { reference: DPIA-2026-03 }

systems:
  - key: shop
    name: Shop database
    owner: Platform team
    connection: ${q(connections.shop)}
    residency: { country: DE }
    purposes: [orders, accounts]
    datasets:
      - key: shop_db
        collections:
          - name: customers
            dataSubjects: [customer]
            purposes: [orders, accounts]
            erasure: delete_row                 # the account goes; the invoices keep what the law requires
            retention:
              - { field: last_login_at, period: P3Y, action: delete, description: Dormant accounts }
            fields:
              - { name: id, primaryKey: true, dataCategories: [user.unique_id], identity: user_id, indexed: true }
              - { name: email, dataCategories: [user.contact.email], identity: email, indexed: true }
              - { name: full_name, dataCategories: [user.name] }
              - { name: phone, dataCategories: [user.contact.phone_number] }
              - { name: created_at, dataCategories: [system.operations] }
              - { name: last_login_at, dataCategories: [system.operations] }
          - name: customer_addresses            # who lives where: one row per customer and address
            dataSubjects: [customer]
            purposes: [orders]
            erasure: delete_row
            fields:
              - { name: id, primaryKey: true, dataCategories: [system.operations] }
              - name: customer_id
                dataCategories: [user.unique_id]
                references: [{ field: shop_db.customers.id, direction: from }]
              - name: address_id
                dataCategories: [system.operations]
                # A household shares its address: erased only when no other customer still lives there.
                references: [{ field: shop_db.addresses.id, direction: to, ownership: shared }]
              - { name: kind, dataCategories: [system.operations] }
          - name: addresses
            dataSubjects: [customer]
            purposes: [orders]
            erasure: delete_row
            fields:
              - { name: id, primaryKey: true, dataCategories: [system.operations] }
              - { name: street, dataCategories: [user.contact.address.street] }
              - { name: postal_code, dataCategories: [user.contact.address.postal_code] }
              - { name: city, dataCategories: [user.contact.address.city] }
              - { name: country, dataCategories: [user.contact.address.country] }
          - name: products
            description: The catalogue; no personal data (declared so the drift check knows it).
            fields:
              - { name: id, primaryKey: true, dataCategories: [system.operations] }
              - { name: name, dataCategories: [system.operations] }
              - { name: price_cents, dataCategories: [system.operations] }
          - name: orders
            dataSubjects: [customer]
            purposes: [orders]
            erasure:                            # invoices must be kept: erasure keeps them
              strategy: retain
              legalBasis: legal_obligation
              reason: Commercial and tax records, § 147 AO and § 257 HGB
              retention: P10Y
            retention:
              - { field: created_at, period: P10Y, action: delete }
            fields:
              - { name: id, primaryKey: true, dataCategories: [system.operations] }
              - name: customer_id
                dataCategories: [user.unique_id]
                erasure: 'null'                 # unlinks the kept invoice from the account that is deleted
                references: [{ field: shop_db.customers.id, direction: from }]
              - { name: billing_name, dataCategories: [user.name] }
              - { name: billing_email, dataCategories: [user.contact.email], identity: email, indexed: true }
              - { name: total_cents, dataCategories: [user.behavior.purchase_history] }
              - { name: created_at, dataCategories: [system.operations] }
          - name: order_items
            dataSubjects: [customer]
            purposes: [orders]
            erasure:
              strategy: retain
              legalBasis: legal_obligation
              reason: Invoice lines, § 147 AO and § 14 UStG
              retention: P10Y
            fields:
              - { name: id, primaryKey: true, dataCategories: [system.operations] }
              - name: order_id
                dataCategories: [system.operations]
                references: [{ field: shop_db.orders.id, direction: from }]
              - { name: product_id, dataCategories: [system.operations] }
              - { name: quantity, dataCategories: [user.behavior.purchase_history] }
              - { name: unit_price_cents, dataCategories: [user.behavior.purchase_history] }
          - name: payment_cards
            dataSubjects: [customer]
            purposes: [orders]
            erasure: delete_row                 # the payment provider's token is useless to keep
            fields:
              - { name: id, primaryKey: true, dataCategories: [system.operations] }
              - name: customer_id
                dataCategories: [user.unique_id]
                references: [{ field: shop_db.customers.id, direction: from }]
              - { name: token, dataCategories: [user.financial.credit_card] }
              - { name: last4, dataCategories: [user.financial.credit_card] }
              - { name: expires, dataCategories: [user.financial.credit_card] }
          - name: logins
            dataSubjects: [customer]
            purposes: [security]
            erasure: delete_row
            retention:
              - { field: at, period: P1Y, action: delete }
            fields:
              - { name: id, primaryKey: true, dataCategories: [system.operations] }
              - name: customer_id
                dataCategories: [user.unique_id]
                references: [{ field: shop_db.customers.id, direction: from }]
              - { name: ip, dataCategories: [user.device.ip_address] }
              - { name: at, dataCategories: [system.operations] }
          - name: visits
            dataSubjects: [customer]
            purposes: [analytics]
            erasure: delete_row
            retention:
              - { field: at, period: P14M, action: anonymise, fields: [ip] }
            fields:
              - { name: id, primaryKey: true, dataCategories: [system.operations] }
              - name: customer_id
                dataCategories: [user.unique_id]
                references: [{ field: shop_db.customers.id, direction: from }]
              - { name: page, dataCategories: [user.behavior.browsing_history] }
              - { name: ip, dataCategories: [user.device.ip_address], erasure: 'null' }
              - { name: at, dataCategories: [system.operations] }
          - name: support_tickets               # tickets stay countable: erasure unlinks, hashes and masks, never deletes
            dataSubjects: [customer]
            purposes: [support]
            retention:
              - { field: closed_at, period: P3Y, action: anonymise, fields: [requester_email, subject, body] }
            fields:
              - { name: id, primaryKey: true, dataCategories: [system.operations] }
              - name: customer_id
                dataCategories: [user.unique_id]
                erasure: 'null'
                references: [{ field: shop_db.customers.id, direction: from }]
              - name: handled_by
                dataCategories: [user.unique_id]
                erasure: 'null'
                # The employee who handled the ticket is only mentioned in it: their access sees this field
                # alone, their erasure clears it and never deletes the customer's ticket.
                references: [{ field: shop_db.employees.id, direction: from, ownership: mention }]
              - { name: requester_email, dataCategories: [user.contact.email], identity: email, indexed: true, erasure: hash }
              - { name: subject, dataCategories: [user.content.private], erasure: { strategy: mask, value: '[removed]' } }
              - { name: body, dataCategories: [user.content.private], erasure: { strategy: mask, value: '[removed]' } }
              - { name: opened_at, dataCategories: [system.operations] }
              - { name: closed_at, dataCategories: [system.operations] }
          - name: employees
            dataSubjects: [employee]
            purposes: [staff]
            erasure: delete_row
            fields:
              - { name: id, primaryKey: true, dataCategories: [user.unique_id], identity: employee_id, indexed: true }
              - { name: full_name, dataCategories: [user.name] }
              - { name: work_email, dataCategories: [user.contact.email], identity: email, indexed: true }
              - { name: team, dataCategories: [system.operations] }

${training}${newsletter}${loyalty}`;
}
