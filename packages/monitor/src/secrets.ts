/** The monitor's random secrets: tokens and role passwords. */
import { randomBytes } from 'node:crypto';

/** A fresh random secret (base64url, 32 bytes of entropy). */
export function generateSecret(): string {
  return randomBytes(32).toString('base64url');
}
