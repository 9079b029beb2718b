import { createHash } from 'node:crypto';
import { canonicalBytes } from './canonical.js';

/** The two trees Custodian keeps. */
export const TREES = ['audit', 'consent'] as const;
export type Tree = (typeof TREES)[number];

const iso = (v: unknown): string | null => (v === null || v === undefined ? null : v instanceof Date ? v.toISOString() : new Date(v as string).toISOString());
const sha256 = (v: unknown): string | null => (v === null || v === undefined ? null : createHash('sha256').update(v as string, 'utf8').digest('hex'));

/**
 * Canonical leaf of an audit entry (version 1). The sealed payload is committed by its SHA-256, so shredding the
 * subject later leaves the leaf recomputable.
 */
export function auditLeaf(row: Readonly<Record<string, unknown>>): Buffer {
  return canonicalBytes({
    v: 1,
    tree: 'audit',
    id: row.id,
    time: iso(row.recorded_at),
    actor: row.actor,
    action: row.action,
    target: { type: row.target_type, ref: row.target_ref ?? null },
    outcome: row.outcome,
    requestId: row.request_id ?? null,
    details: JSON.parse(String(row.details)) as unknown,
    payloadSha256: sha256(row.payload),
  });
}

/**
 * Canonical leaf of a consent event (version 1): every field of the decision, and the stored evidence committed
 * by the SHA-256 of its stored form (sealed `c1.…` or JSON), so shredding leaves the leaf recomputable.
 */
export function consentLeaf(row: Readonly<Record<string, unknown>>): Buffer {
  return canonicalBytes({
    v: 1,
    tree: 'consent',
    id: row.id,
    subjectId: row.subject_id,
    purpose: row.purpose,
    decision: row.decision,
    legalBasis: row.legal_basis,
    jurisdiction: row.jurisdiction ?? null,
    noticeVersion: row.notice_version ?? null,
    method: row.method,
    recordedAt: iso(row.recorded_at),
    clientTime: iso(row.client_time),
    expiresAt: iso(row.expires_at),
    gpc: Number(row.gpc) === 1,
    evidenceFormat: row.evidence_format ?? 'json',
    evidenceSha256: sha256(row.evidence),
    batchId: row.batch_id,
    actor: row.actor,
  });
}
