import { TCString } from '@iabtcf/core';
import { CustodianError } from '../core/index.js';
import type { TcfSummary } from './types.js';

function ids(vector: { forEach(cb: (value: boolean, id: number) => void): void }): number[] {
  const out: number[] = [];
  vector.forEach((value, id) => {
    if (value) out.push(id);
  });
  return out;
}

function isoOrNull(d: Date | undefined): string | null {
  return d instanceof Date && Number.isFinite(d.getTime()) ? d.toISOString() : null;
}

/**
 * Decodes an IAB TCF v2.x consent string with the IAB's own library (@iabtcf/core) and checks it is
 * a well-formed v2 string from a real CMP. Throws CST_ERR_CONSENT_BAD_TCF otherwise.
 */
export function decodeTcString(tcString: string, index: number): TcfSummary {
  const fail = (why: string): never => {
    throw new CustodianError('CST_ERR_CONSENT_BAD_TCF', `evidence.tcString is not a valid TCF v2 string: ${why}`, {
      details: { index, path: `events.${index}.evidence.tcString` },
    });
  };
  if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(tcString)) fail('not base64url segments');
  let model: ReturnType<typeof TCString.decode>;
  try {
    model = TCString.decode(tcString);
  } catch {
    return fail('undecodable');
  }
  const version = Number(model.version);
  const cmpId = Number(model.cmpId);
  const vendorListVersion = Number(model.vendorListVersion);
  if (version !== 2) fail('version is not 2');
  if (!Number.isInteger(cmpId) || cmpId < 2) fail('no registered CMP id');
  if (!Number.isInteger(vendorListVersion) || vendorListVersion < 1) fail('no vendor list version');
  return {
    version,
    policyVersion: Number(model.policyVersion),
    cmpId,
    cmpVersion: Number(model.cmpVersion),
    vendorListVersion,
    created: isoOrNull(model.created),
    lastUpdated: isoOrNull(model.lastUpdated),
    purposeConsents: ids(model.purposeConsents),
    purposeLegitimateInterests: ids(model.purposeLegitimateInterests),
    vendorConsentCount: ids(model.vendorConsents).length,
  };
}
