import { DataMap, manifestSchema, type ManifestInput } from '../../src/datamap/index.js';

type SystemInput = NonNullable<ManifestInput['systems']>[number];

/** A data map of the given systems (parsed like a manifest file, not validated: plans must cope with both). */
export function mapOf(systems: SystemInput[]): DataMap {
  return new DataMap(manifestSchema.parse({ version: 1, organization: { name: 'Example Ltd' }, systems }));
}

/**
 * A shop whose customers share addresses through a join table, keep orders under a legal obligation, write
 * support tickets that employees handle, and whose analytics (another system) reference the customers.
 */
export function shopSystems(connections: { shop?: string; analytics?: string } = {}): SystemInput[] {
  return [
    {
      key: 'shop',
      name: 'Shop',
      owner: 'Platform team',
      ...(connections.shop === undefined ? {} : { connection: connections.shop }),
      datasets: [
        {
          key: 'shop_db',
          collections: [
            {
              name: 'customers',
              erasure: 'null',
              fields: [
                { name: 'id', primaryKey: true, identity: 'user_id', indexed: true, dataCategories: ['user.unique_id'], erasure: 'delete_row' },
                { name: 'email', identity: 'email', indexed: true, dataCategories: ['user.contact.email'], erasure: { strategy: 'mask', value: 'erased@invalid.example' } },
                { name: 'full_name', dataCategories: ['user.name'] },
              ],
            },
            {
              name: 'customer_addresses',
              erasure: 'delete_row',
              fields: [
                { name: 'id', primaryKey: true, dataCategories: ['system.operations'] },
                { name: 'customer_id', dataCategories: ['user.unique_id'], references: [{ field: 'shop_db.customers.id', direction: 'from' }] },
                { name: 'address_id', dataCategories: ['system.operations'], references: [{ field: 'shop_db.addresses.id', direction: 'to', ownership: 'shared' }] },
              ],
            },
            {
              name: 'addresses',
              erasure: 'delete_row',
              fields: [
                { name: 'id', primaryKey: true, dataCategories: ['system.operations'] },
                { name: 'street', dataCategories: ['user.contact.address.street'] },
                { name: 'city', dataCategories: ['user.contact.address.city'] },
              ],
            },
            {
              name: 'orders',
              erasure: { strategy: 'retain', legalBasis: 'legal_obligation', reason: 'Commercial and tax records, § 147 AO', retention: 'P10Y' },
              fields: [
                { name: 'id', primaryKey: true, dataCategories: ['system.operations'] },
                { name: 'customer_id', dataCategories: ['user.unique_id'], erasure: 'null', references: [{ field: 'shop_db.customers.id', direction: 'from' }] },
                { name: 'total_cents', dataCategories: ['user.behavior.purchase_history'] },
              ],
            },
          ],
        },
        {
          key: 'crm',
          collections: [
            {
              name: 'employees',
              erasure: 'delete_row',
              fields: [
                { name: 'id', primaryKey: true, identity: 'employee_id', indexed: true, dataCategories: ['user.unique_id'] },
                { name: 'work_email', identity: 'email', indexed: true, dataCategories: ['user.contact.email'] },
                { name: 'full_name', dataCategories: ['user.name'] },
              ],
            },
            {
              name: 'tickets',
              fields: [
                { name: 'id', primaryKey: true, dataCategories: ['system.operations'] },
                { name: 'customer_id', dataCategories: ['user.unique_id'], erasure: 'null', references: [{ field: 'shop_db.customers.id', direction: 'from' }] },
                { name: 'handled_by', dataCategories: ['user.unique_id'], erasure: 'null', references: [{ field: 'crm.employees.id', direction: 'from', ownership: 'mention' }] },
                { name: 'requester_email', dataCategories: ['user.contact.email'], erasure: 'hash' },
                { name: 'body', dataCategories: ['user.content.private'], erasure: { strategy: 'mask', value: '[removed]' } },
              ],
            },
          ],
        },
      ],
    },
    {
      key: 'analytics',
      name: 'Analytics',
      owner: 'Growth team',
      ...(connections.analytics === undefined ? {} : { connection: connections.analytics }),
      datasets: [
        {
          key: 'analytics_events',
          collections: [
            {
              name: 'events',
              erasure: 'delete_row',
              fields: [
                { name: 'id', primaryKey: true, dataCategories: ['system.operations'] },
                { name: 'customer_id', dataCategories: ['user.unique_id'], references: [{ field: 'shop_db.customers.id', direction: 'from' }] },
                { name: 'ip', dataCategories: ['user.device.ip_address'], erasure: 'null' },
              ],
            },
            {
              name: 'campaign_stats',
              fields: [{ name: 'day', primaryKey: true, dataCategories: ['system.operations'] }],
            },
          ],
        },
      ],
    },
  ];
}
