/** Certificate fingerprints: computed the one way, parsed from the many ways people write them. */
import { X509Certificate, createHash } from 'node:crypto';

/** SHA-256 fingerprint of a certificate (PEM or DER), in canonical form: 64 lower-case hex digits. */
export function certificateFingerprint(cert: string | Buffer): string {
  return createHash('sha256').update(new X509Certificate(cert).raw).digest('hex');
}

/** Parses a fingerprint as users may write it (hex with or without colons, any case, optional `sha256:` prefix); throws an Error fit for a user when malformed. */
export function parseFingerprint(text: string): string {
  const trimmed = text.trim();
  const hex = trimmed.replace(/^sha-?256:/i, '');
  const pairs = /^[0-9a-f]{2}(?::[0-9a-f]{2})*$/i.test(hex);
  const digits = hex.replace(/:/g, '');
  if ((pairs || /^[0-9a-f]*$/i.test(hex)) && digits.length === 64) return digits.toLowerCase();
  const shown = trimmed.length > 80 ? `${trimmed.slice(0, 77)}...` : trimmed;
  const found = /^[0-9a-f:]*$/i.test(hex) ? `, got ${digits.length}` : '';
  const allowed = '(colons between pairs and a "sha256:" prefix are allowed)';
  throw new Error(`invalid certificate fingerprint "${shown}": expected a SHA-256 fingerprint, 64 hex digits${found} ${allowed}`);
}
