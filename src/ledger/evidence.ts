import { isIP } from 'node:net';
import { CustodianError, isStorableText } from '../core/index.js';
import { LEDGER_LIMITS } from './limits.js';
import type { Evidence, EvidenceInput } from './types.js';
import { decodeTcString } from './tcf.js';

/** Evidence minimisation settings. */
export interface EvidencePolicy {
  /** Truncate IPs to /24 (IPv4) and /48 (IPv6). Default true. */
  readonly truncateIp: boolean;
}

function expandIpv6(ip: string): number[] {
  let text = ip;
  // IPv4-mapped tail (::ffff:1.2.3.4) becomes two hextets.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4[1]!.split('.').map(Number) as [number, number, number, number];
    text = text.slice(0, -v4[1]!.length) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? (text.split('::') as [string, string]) : [text, undefined];
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const fill = tail === undefined ? [] : Array<string>(8 - h.length - t.length).fill('0');
  return [...h, ...fill, ...t].map((x) => parseInt(x, 16));
}

/**
 * Truncates an IP address for storage: IPv4 to its /24 (last octet zero), IPv6 to its /48.
 * Returns undefined for a string that is not an IP address.
 */
export function truncateIp(ip: string): string | undefined {
  const family = isIP(ip);
  if (family === 4) return ip.split('.').slice(0, 3).concat('0').join('.');
  if (family === 6) {
    const h = expandIpv6(ip.split('%')[0]!);
    // An IPv4-mapped address (::ffff:a.b.c.d, dotted or hex) carries an IPv4 address: truncate that to its /24.
    if (h.slice(0, 5).every((x) => x === 0) && h[5] === 0xffff) {
      return `::ffff:${h[6]! >> 8}.${h[6]! & 0xff}.${h[7]! >> 8}.0`;
    }
    // The URL parser prints the canonical (RFC 5952) compressed form.
    return new URL(`http://[${h.slice(0, 3).map((x) => x.toString(16)).join(':')}::]`).hostname.slice(1, -1);
  }
  return undefined;
}

/** Keeps scheme, host and path of a page URL; drops credentials, query and fragment. */
export function minimisePageUrl(url: string): string | undefined {
  try {
    const u = new URL(url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return undefined;
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return undefined;
  }
}

/**
 * Validates and minimises submitted evidence. `index` names the event in errors.
 * Throws CST_ERR_VALIDATION for a bad IP or URL and CST_ERR_CONSENT_BAD_TCF for a bad TCF string.
 */
export function minimiseEvidence(input: EvidenceInput | null | undefined, policy: EvidencePolicy, index: number): Evidence | null {
  if (!input) return null;
  const out: { -readonly [K in keyof Evidence]: Evidence[K] } = {};
  if (input.ip !== undefined) {
    if (typeof input.ip !== 'string' || isIP(input.ip) === 0) {
      throw new CustodianError('CST_ERR_VALIDATION', 'evidence.ip is not an IP address', {
        details: { issues: [{ path: `events.${index}.evidence.ip`, message: 'invalid IP address' }] },
      });
    }
    out.ip = policy.truncateIp ? truncateIp(input.ip)! : input.ip;
  }
  const tooLong = (field: string, value: unknown, max: number) => {
    if (value !== undefined && (typeof value !== 'string' || value.length > max || !isStorableText(value))) {
      throw new CustodianError('CST_ERR_VALIDATION', `evidence.${field} must be text of at most ${max} characters`, {
        details: { issues: [{ path: `events.${index}.evidence.${field}`, message: 'invalid or too long' }] },
      });
    }
  };
  tooLong('userAgent', input.userAgent, LEDGER_LIMITS.maxUserAgentLength);
  tooLong('pageUrl', input.pageUrl, LEDGER_LIMITS.maxPageUrlLength);
  tooLong('tcString', input.tcString, LEDGER_LIMITS.maxTcStringLength);
  if (input.gpc !== undefined && typeof input.gpc !== 'boolean') {
    throw new CustodianError('CST_ERR_VALIDATION', 'evidence.gpc must be a boolean', { details: { issues: [{ path: `events.${index}.evidence.gpc`, message: 'not a boolean' }] } });
  }
  if (input.userAgent !== undefined) out.userAgent = input.userAgent;
  if (input.pageUrl !== undefined) {
    const url = minimisePageUrl(input.pageUrl);
    if (url === undefined) {
      throw new CustodianError('CST_ERR_VALIDATION', 'evidence.pageUrl is not an http(s) URL', {
        details: { issues: [{ path: `events.${index}.evidence.pageUrl`, message: 'invalid URL' }] },
      });
    }
    out.pageUrl = url;
  }
  if (input.tcString !== undefined) {
    out.tcString = input.tcString;
    out.tcf = decodeTcString(input.tcString, index);
  }
  if (input.gpc !== undefined) out.gpc = input.gpc;
  return Object.keys(out).length === 0 ? null : out;
}
