import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { EVENT_TYPES } from '../../src/core/index.js';
import { checkDelivery, type Received } from './webhook-receiver.js';

describe('docs/propagation.md', () => {
  it('documents every event type, and keeps the sections others fill', async () => {
    const doc = await readFile(new URL('../../docs/propagation.md', import.meta.url), 'utf8');
    for (const type of Object.keys(EVENT_TYPES)) expect(doc, type).toMatch(new RegExp(`^\\| \`${type.replace('.', '\\.')}\` \\|`, 'm'));
    for (const heading of ['## Events', '## Subscriptions & delivery', '## Webhook signatures', '## ConsentClient', '## filterByConsent']) expect(doc).toContain(`\n${heading}\n`);
  });
});

describe('the reliability checker itself', () => {
  const r = (id: string, seq: number, subject: string, status = 200, body = id): Received => ({ id, seq, subject, type: 'consent.granted', body, verified: true, contentType: 'application/cloudevents+json', status });
  const expected = [
    { id: 'a', sequence: '1', subject: 's' },
    { id: 'b', sequence: '2', subject: 's' },
  ];
  it('accepts in-order delivery with same-id duplicates', () => {
    expect(checkDelivery([r('a', 1, 's', 500), r('a', 1, 's'), r('b', 2, 's'), r('a', 1, 's')], expected)).toEqual({ duplicates: 2 });
  });
  it('catches a lost event, disorder within a subject, and a duplicate with another body', () => {
    expect(() => checkDelivery([r('a', 1, 's')], expected)).toThrow(/never delivered: 2/);
    expect(() => checkDelivery([r('b', 2, 's'), r('a', 1, 's')], expected)).toThrow(/arrived after/);
    expect(() => checkDelivery([r('a', 1, 's'), r('b', 2, 's'), r('a', 1, 's', 200, 'other')], expected)).toThrow(/different body/);
  });
});
