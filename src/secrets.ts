// The master secret key and what is derived from it: AES-256-GCM for secrets the ACS must
// store and read back (connection request passwords), and HMAC keys for signed URLs.
//
// One master key, separate sub-keys per purpose (HKDF): a signature made for file URLs can
// never be replayed as anything else, and rotating one use does not need a second secret.
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Config } from './config';
import type { Logger } from './logger';

const KEY_BYTES = 32;
const IV_BYTES = 12;
const FORMAT = 'v1';

export type KeyPurpose = 'encryption' | 'file-url';

/** Accepts 64 hex characters or base64 of 32 bytes. */
export function parseKey(raw: string): Buffer {
  const s = raw.trim();
  const key = /^[0-9a-fA-F]{64}$/.test(s) ? Buffer.from(s, 'hex') : Buffer.from(s, 'base64');
  if (key.length !== KEY_BYTES) throw new Error('ACS_SECRET_KEY must be 32 bytes, as 64 hex characters or base64');
  return key;
}

export class Secrets {
  private readonly subkeys = new Map<KeyPurpose, Buffer>();

  constructor(master: Buffer) {
    if (master.length !== KEY_BYTES) throw new Error('the master key must be 32 bytes');
    for (const purpose of ['encryption', 'file-url'] as const) {
      this.subkeys.set(purpose, Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), `acs ${purpose}`, KEY_BYTES)));
    }
  }

  private key(purpose: KeyPurpose): Buffer {
    return this.subkeys.get(purpose)!;
  }

  /**
   * Encrypts with AES-256-GCM. `context` (e.g. the device id) is authenticated but not stored:
   * a value copied into another device's record fails to decrypt instead of being used there.
   */
  encrypt(plain: string, context: string): string {
    const iv = randomBytes(IV_BYTES);
    const c = createCipheriv('aes-256-gcm', this.key('encryption'), iv);
    c.setAAD(Buffer.from(context));
    const body = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
    return [FORMAT, iv.toString('base64'), c.getAuthTag().toString('base64'), body.toString('base64')].join(':');
  }

  /** Throws when the value was not made with this key and context. */
  decrypt(blob: string, context: string): string {
    const [format, iv, tag, body] = blob.split(':');
    if (format !== FORMAT || !iv || !tag || body === undefined) throw new Error('not an encrypted value');
    const d = createDecipheriv('aes-256-gcm', this.key('encryption'), Buffer.from(iv, 'base64'));
    d.setAAD(Buffer.from(context));
    d.setAuthTag(Buffer.from(tag, 'base64'));
    return Buffer.concat([d.update(Buffer.from(body, 'base64')), d.final()]).toString('utf8');
  }

  /** HMAC-SHA256 with the purpose's sub-key, base64url, truncated to `bytes`. */
  sign(purpose: KeyPurpose, text: string, bytes = 32): string {
    return createHmac('sha256', this.key(purpose)).update(text).digest().subarray(0, bytes).toString('base64url');
  }

  verify(purpose: KeyPurpose, text: string, signature: string, bytes = 32): boolean {
    const expected = Buffer.from(this.sign(purpose, text, bytes));
    const given = Buffer.from(signature);
    return expected.length === given.length && timingSafeEqual(expected, given);
  }
}

/**
 * The master key from ACS_SECRET_KEY. Production requires it: a generated key would differ per
 * instance and be lost with the machine, and stored secrets with it. Development falls back to
 * a key generated once into <dataDir>/secret.key (with a warning) so nothing needs setting up.
 */
export function loadSecrets(config: Config, log: Logger, root = process.cwd()): Secrets {
  if (config.secretKey) return new Secrets(parseKey(config.secretKey));
  if (config.env === 'production') {
    throw new Error('ACS_SECRET_KEY is required in production (32 random bytes, e.g. `openssl rand -hex 32`)');
  }
  const file = path.resolve(root, config.dataDir, 'secret.key');
  mkdirSync(path.dirname(file), { recursive: true });
  // Written aside and linked into place: of several processes starting at once exactly one
  // installs its key, and nobody ever reads a half-written file.
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
  writeFileSync(tmp, randomBytes(KEY_BYTES).toString('hex') + '\n', { mode: 0o600 });
  let generated = false;
  try {
    linkSync(tmp, file);
    generated = true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    unlinkSync(tmp);
  }
  log.warn({ file, generated }, 'ACS_SECRET_KEY is not set: using the development key file (production must set ACS_SECRET_KEY)');
  return new Secrets(parseKey(readFileSync(file, 'utf8')));
}
