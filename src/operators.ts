// Operator accounts: owner of the `operators` collection. An operator is a named API token
// with a role. Tokens are 256 random bits shown once at creation; only their SHA-256 is stored
// (a fast hash is enough for random tokens of this size: there is nothing to brute-force).
//
// Roles are ordered: viewer (read) < operator (tasks, files, tags) < admin (accounts, settings,
// deletes, audit log). ACS_ADMIN_TOKEN from the environment is accepted as an admin token so a
// fresh install is usable before any account exists.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Collection, Db } from 'mongodb';
import { ensureIndexes } from './db';

export const ROLES = ['viewer', 'operator', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export const roleAtLeast = (have: Role, need: Role): boolean => ROLES.indexOf(have) >= ROLES.indexOf(need);

export interface OperatorDoc {
  _id: string;
  name: string;
  role: Role;
  /** hex SHA-256 of the token */
  tokenHash: string;
  /** First characters of the token, to recognise it in listings without revealing it. */
  tokenPrefix: string;
  createdAt: Date;
  createdBy: string;
  lastUsedAt?: Date;
  revokedAt?: Date;
  revokedBy?: string;
}

/** Who is calling: an operator account, or the environment's admin token. */
export interface Principal {
  id: string;
  name: string;
  role: Role;
}

export const ENV_ADMIN: Principal = { id: 'env-admin', name: 'ACS_ADMIN_TOKEN', role: 'admin' };

const TOKEN_PREFIX = 'acs_';
/** Do not write lastUsedAt more often than this per operator. */
const LAST_USED_GRANULARITY_MS = 60_000;

export const hashToken = (token: string): Buffer => createHash('sha256').update(token, 'utf8').digest();

export class Operators {
  readonly col: Collection<OperatorDoc>;
  private readonly adminHash?: Buffer;

  constructor(db: Db, adminToken?: string) {
    this.col = db.collection<OperatorDoc>('operators');
    if (adminToken) this.adminHash = hashToken(adminToken);
  }

  async ensureIndexes(): Promise<void> {
    await ensureIndexes(this.col, [{ key: { tokenHash: 1 } }, { key: { name: 1 } }]);
  }

  /** Creates an account; the token is returned here and never again. */
  async create(name: string, role: Role, createdBy: string): Promise<{ operator: OperatorDoc; token: string }> {
    const token = TOKEN_PREFIX + randomBytes(32).toString('base64url');
    const operator: OperatorDoc = {
      _id: 'op_' + randomBytes(8).toString('hex'),
      name,
      role,
      tokenHash: hashToken(token).toString('hex'),
      tokenPrefix: token.slice(0, TOKEN_PREFIX.length + 6),
      createdAt: new Date(),
      createdBy,
    };
    await this.col.insertOne(operator);
    return { operator, token };
  }

  /** The principal a bearer token stands for, or null (unknown, revoked or empty). */
  async authenticate(token: string): Promise<Principal | null> {
    if (!token) return null;
    const hash = hashToken(token);
    if (this.adminHash && timingSafeEqual(hash, this.adminHash)) return ENV_ADMIN;
    const op = await this.col.findOne({ tokenHash: hash.toString('hex') });
    if (!op || op.revokedAt) return null;
    const now = Date.now();
    if (!op.lastUsedAt || now - op.lastUsedAt.getTime() > LAST_USED_GRANULARITY_MS) {
      void this.col.updateOne({ _id: op._id }, { $set: { lastUsedAt: new Date(now) } }).catch(() => undefined);
    }
    return { id: op._id, name: op.name, role: op.role };
  }

  async list(includeRevoked = false): Promise<OperatorDoc[]> {
    const filter = includeRevoked ? {} : { revokedAt: { $exists: false } };
    return this.col.find(filter, { projection: { tokenHash: 0 } }).sort({ createdAt: 1 }).toArray();
  }

  async get(id: string): Promise<OperatorDoc | null> {
    return this.col.findOne({ _id: id }, { projection: { tokenHash: 0 } });
  }

  /** Revokes by id; returns the account, or null when there is none (already revoked counts as found). */
  async revoke(id: string, by: string): Promise<OperatorDoc | null> {
    await this.col.updateOne({ _id: id, revokedAt: { $exists: false } }, { $set: { revokedAt: new Date(), revokedBy: by } });
    return this.get(id);
  }

  /** Active accounts with this name (the CLI revokes by name when it is unambiguous). */
  async byName(name: string): Promise<OperatorDoc[]> {
    return this.col.find({ name, revokedAt: { $exists: false } }, { projection: { tokenHash: 0 } }).toArray();
  }
}
