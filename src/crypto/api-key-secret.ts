import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** Prefix of generated API keys, so leaked keys are recognisable by secret scanners. */
export const API_KEY_PREFIX = 'cst_';

/** A new API key: 32 random bytes, base64url, behind {@link API_KEY_PREFIX}. */
export function generateApiKeySecret(): string {
  return API_KEY_PREFIX + randomBytes(32).toString('base64url');
}

/**
 * The stored form of an API key: SHA-256 hex. Generated keys carry 256 bits of entropy, so a fast hash
 * is enough (no dictionary to attack); admin-chosen keys must be at least 24 characters for the same reason.
 */
export function hashApiKeySecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** Constant-time comparison of two hex digests of equal length. */
export function digestsEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a, 'hex');
  const bb = Buffer.from(b, 'hex');
  return ab.length === bb.length && ab.length > 0 && timingSafeEqual(ab, bb);
}
