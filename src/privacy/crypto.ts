// Protection of personal data at rest (issue 4): keyed-hash pseudonyms for identifiers (IMEI,
// IMSI, ICCID, MSISDN, MAC, serial, IP, device ids) and AES-256-GCM for what the owner may read
// back (SSIDs, location, communications).
//
// Keys come from configuration (ACS_PRIVACY_KEYS, ACS_PSEUDONYM_KEYS), each with an id so keys
// can rotate: the first key of a list is current (new values use it), the others still
// decrypt / match old values. Without those settings the keys are derived (HKDF) from the
// master key (ACS_SECRET_KEY, or the development key file). Keys are held in a closure-free
// private map and never serialised: toJSON/inspect of this object print nothing secret.
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';

const KEY_BYTES = 32;
const IV_BYTES = 12;
/** Encrypted values: enc1:<key id>:<iv>:<tag>:<ciphertext> (base64url parts). */
const ENC = 'enc1';
/** Pseudonyms: ps1:<key id>:<base64url of HMAC-SHA256, 24 bytes>. */
const PS = 'ps1';
const PS_BYTES = 24;

export type IdentifierKind = 'serial' | 'mac' | 'imei' | 'imsi' | 'iccid' | 'msisdn' | 'ip' | 'device' | 'other';
export const IDENTIFIER_KINDS: IdentifierKind[] = ['serial', 'mac', 'imei', 'imsi', 'iccid', 'msisdn', 'ip', 'device', 'other'];

export interface KeyRing {
  /** id of the key new values use */
  current: string;
  keys: Map<string, Buffer>;
}

const KEY_ID = /^[A-Za-z0-9_-]{1,16}$/;

/** Accepts 64 hex characters or base64/base64url of 32 bytes. */
export function parseKeyBytes(raw: string, what: string): Buffer {
  const s = raw.trim();
  const key = /^[0-9a-fA-F]{64}$/.test(s) ? Buffer.from(s, 'hex') : Buffer.from(s, s.includes('-') || s.includes('_') ? 'base64url' : 'base64');
  if (key.length !== KEY_BYTES) throw new Error(`${what}: each key must be 32 bytes, as 64 hex characters or base64`);
  return key;
}

/**
 * "id1:key1,id2:key2" (the first is current). The error never quotes the value: it may be a
 * key.
 */
export function parseKeyRing(raw: string, what: string): KeyRing {
  const keys = new Map<string, Buffer>();
  let current = '';
  for (const part of raw.split(',').map((p) => p.trim()).filter(Boolean)) {
    const colon = part.indexOf(':');
    if (colon < 0) throw new Error(`${what}: expected "<id>:<key>" entries separated by commas`);
    const id = part.slice(0, colon);
    if (!KEY_ID.test(id)) throw new Error(`${what}: key ids are 1-16 letters, digits, "_" or "-"`);
    if (keys.has(id)) throw new Error(`${what}: key id "${id}" appears twice`);
    keys.set(id, parseKeyBytes(part.slice(colon + 1), what));
    if (!current) current = id;
  }
  if (!current) throw new Error(`${what}: no key given`);
  return { current, keys };
}

/** A ring of one key derived from the master key for a purpose. */
export function derivedRing(master: Buffer, purpose: string, id = 'm1'): KeyRing {
  const key = Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), `acs privacy ${purpose}`, KEY_BYTES));
  return { current: id, keys: new Map([[id, key]]) };
}

/** Canonical text of an identifier, so "AA:BB:.." and "aa-bb-.." give the same pseudonym. */
export function normaliseIdentifier(kind: IdentifierKind, value: string): string {
  const v = value.trim();
  switch (kind) {
    case 'mac':
      return v.toLowerCase().replace(/[^0-9a-f]/g, '');
    case 'ip': {
      const lower = v.toLowerCase();
      return /^\d{1,3}(\.\d{1,3}){3}$/.test(lower) ? lower.split('.').map((o) => String(Number(o))).join('.') : lower;
    }
    case 'imei':
    case 'imsi':
    case 'iccid':
    case 'msisdn':
      return v.replace(/[\s-]/g, '');
    default:
      return v;
  }
}

export class PrivacyCrypto {
  readonly #enc: KeyRing;
  readonly #ps: KeyRing;

  constructor(encryption: KeyRing, pseudonym: KeyRing) {
    for (const ring of [encryption, pseudonym]) {
      if (!ring.keys.has(ring.current)) throw new Error('the current key id is not in the key ring');
      for (const k of ring.keys.values()) if (k.length !== KEY_BYTES) throw new Error('privacy keys must be 32 bytes');
    }
    this.#enc = encryption;
    this.#ps = pseudonym;
  }

  /** Key ids only (for status pages); never the keys. */
  get keyIds(): { encryption: { current: string; all: string[] }; pseudonym: { current: string; all: string[] } } {
    return {
      encryption: { current: this.#enc.current, all: [...this.#enc.keys.keys()] },
      pseudonym: { current: this.#ps.current, all: [...this.#ps.keys.keys()] },
    };
  }

  toJSON(): string {
    return '[PrivacyCrypto]';
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return '[PrivacyCrypto]';
  }

  private hash(keyId: string, kind: IdentifierKind, value: string): string {
    const key = this.#ps.keys.get(keyId)!;
    const mac = createHmac('sha256', key).update(kind).update('\0').update(normaliseIdentifier(kind, value)).digest();
    return `${PS}:${keyId}:${mac.subarray(0, PS_BYTES).toString('base64url')}`;
  }

  /** The pseudonym of an identifier with the current key: stable, not reversible without the key. */
  pseudonymise(kind: IdentifierKind, value: string): string {
    return this.hash(this.#ps.current, kind, value);
  }

  /** The pseudonym under every known key (to find data written before a rotation). */
  pseudonymsOf(kind: IdentifierKind, value: string): string[] {
    return [...this.#ps.keys.keys()].map((id) => this.hash(id, kind, value));
  }

  static isPseudonym(v: string): boolean {
    return v.startsWith(`${PS}:`);
  }

  static isEncrypted(v: string): boolean {
    return v.startsWith(`${ENC}:`);
  }

  /**
   * AES-256-GCM with a fresh IV. `context` (e.g. device pseudonym and parameter path) is
   * authenticated, not stored: a value copied elsewhere fails to decrypt.
   */
  encrypt(plain: string, context: string): string {
    const id = this.#enc.current;
    const iv = randomBytes(IV_BYTES);
    const c = createCipheriv('aes-256-gcm', this.#enc.keys.get(id)!, iv);
    c.setAAD(Buffer.from(context, 'utf8'));
    const body = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
    return [ENC, id, iv.toString('base64url'), c.getAuthTag().toString('base64url'), body.toString('base64url')].join(':');
  }

  /** Throws when the value is malformed, was made with an unknown key, or for another context. */
  decrypt(blob: string, context: string): string {
    const [format, id, iv, tag, body] = blob.split(':');
    if (format !== ENC || !id || !iv || !tag || body === undefined) throw new Error('not an encrypted value');
    const key = this.#enc.keys.get(id);
    if (!key) throw new Error(`encrypted with key "${id}", which is not configured`);
    const d = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
    d.setAAD(Buffer.from(context, 'utf8'));
    d.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([d.update(Buffer.from(body, 'base64url')), d.final()]).toString('utf8');
  }

  /** Id of the key an encrypted value was made with. */
  static keyIdOf(blob: string): string | undefined {
    const parts = blob.split(':');
    return parts[0] === ENC ? parts[1] : undefined;
  }

  /** True when the value was encrypted with a key other than the current one. */
  needsRotation(blob: string): boolean {
    const id = PrivacyCrypto.keyIdOf(blob);
    return id !== undefined && id !== this.#enc.current;
  }

  /** Decrypts with the old key and encrypts with the current one. */
  reencrypt(blob: string, context: string): string {
    return this.encrypt(this.decrypt(blob, context), context);
  }
}

export interface PrivacyKeySettings {
  privacyKeys?: string;
  pseudonymKeys?: string;
}

/**
 * Builds the crypto from configuration: explicit key rings when given, else keys derived from
 * the master key. The caller supplies the master key (it decides where it comes from).
 */
export function privacyCryptoFrom(settings: PrivacyKeySettings, master: () => Buffer): PrivacyCrypto {
  const enc = settings.privacyKeys ? parseKeyRing(settings.privacyKeys, 'ACS_PRIVACY_KEYS') : derivedRing(master(), 'encryption');
  const ps = settings.pseudonymKeys ? parseKeyRing(settings.pseudonymKeys, 'ACS_PSEUDONYM_KEYS') : derivedRing(master(), 'pseudonym');
  return new PrivacyCrypto(enc, ps);
}
