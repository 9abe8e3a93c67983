// Rules (issue 5): owner of the `rules` collection. Shipped rules are installed at start (and
// upgraded while nobody edited them), ACS_RULES_FILE adds or replaces rules from a JSON file,
// operators create, change, enable and disable rules through the API. Every definition is
// validated on the way in (src/rules/model.ts); every change bumps the rule's revision.
import { readFileSync } from 'node:fs';
import type { Collection, Db } from 'mongodb';
import { ensureIndexes } from '../db';
import type { Logger } from '../logger';
import { parseRule, RULE_ID, RuleDefinition, scopeOf, type RuleDoc } from './model';
import { SHIPPED_RULES, type ShippedRule } from './shipped';

export class RuleError extends Error {
  constructor(
    readonly status: 400 | 404 | 409,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

export class Rules {
  readonly col: Collection<RuleDoc>;

  constructor(
    db: Db,
    private readonly log: Logger,
    /** Is this parameter diagnostics-only under the current collection profile (the rule's scope)? */
    private readonly diagnosticOnly: (name: string) => boolean = () => false,
  ) {
    this.col = db.collection<RuleDoc>('rules');
  }

  async ensureIndexes(): Promise<void> {
    await ensureIndexes(this.col, [{ key: { enabled: 1 } }]);
  }

  /** Installs shipped rules (and upgrades unedited ones), then the rules file when given. */
  async init(opts: { file?: string; shipped?: ShippedRule[] } = {}): Promise<void> {
    const now = new Date();
    for (const s of opts.shipped ?? SHIPPED_RULES) {
      const def = parseRule(s.definition, `shipped rule ${s.id}`);
      const doc = this.docOf(s.id, def, { revision: 1, shipped: true, updatedBy: 'shipped', now });
      doc.shippedVersion = s.version;
      const res = await this.col.updateOne({ _id: s.id }, { $setOnInsert: doc }, { upsert: true });
      if (res.upsertedCount) continue;
      // Upgrade an older shipped definition nobody has edited since.
      const cur = await this.col.findOne({ _id: s.id });
      if (cur && cur.shipped && !cur.modified && (cur.shippedVersion ?? 0) < s.version) {
        const { _id, createdAt: _c, ...rest } = this.docOf(s.id, def, { revision: cur.revision + 1, shipped: true, updatedBy: 'shipped', now });
        await this.col.updateOne({ _id, revision: cur.revision }, { $set: { ...rest, shippedVersion: s.version } });
        this.log.info({ rule: s.id, version: s.version }, 'shipped rule upgraded');
      }
    }
    if (opts.file) {
      let raw: unknown;
      try {
        raw = JSON.parse(readFileSync(opts.file, 'utf8'));
      } catch (err) {
        throw new Error(`ACS_RULES_FILE ${opts.file}: ${(err as Error).message}`);
      }
      const list = Array.isArray(raw) ? raw : [raw];
      for (const [i, item] of list.entries()) {
        const { id, ...def } = (item ?? {}) as { id?: unknown };
        if (typeof id !== 'string' || !RULE_ID.test(id)) throw new Error(`ACS_RULES_FILE ${opts.file}: rules[${i}].id: lower-case letters, digits and -`);
        const parsed = parseRule(def, `ACS_RULES_FILE ${opts.file}: rule ${id}`);
        const cur = await this.col.findOne({ _id: id });
        if (!cur) await this.create(id, parsed, 'rules file');
        else if (JSON.stringify(strip(cur)) !== JSON.stringify(strip(this.docOf(id, parsed, { revision: 0, shipped: false, updatedBy: '', now })))) {
          await this.update(id, parsed, 'rules file');
        }
      }
    }
  }

  private docOf(id: string, def: RuleDefinition, o: { revision: number; shipped: boolean; updatedBy: string; now: Date }): RuleDoc {
    return {
      ...def,
      _id: id,
      enabled: def.enabled ?? true,
      revision: o.revision,
      shipped: o.shipped,
      scope: scopeOf(def, this.diagnosticOnly),
      createdAt: o.now,
      updatedAt: o.now,
      updatedBy: o.updatedBy,
    };
  }

  async list(): Promise<RuleDoc[]> {
    return this.col.find({}).sort({ _id: 1 }).toArray();
  }

  async enabled(): Promise<RuleDoc[]> {
    return (await this.list()).filter((r) => r.enabled);
  }

  async get(id: string): Promise<RuleDoc | null> {
    return this.col.findOne({ _id: id });
  }

  async create(id: string, def: RuleDefinition, by: string): Promise<RuleDoc> {
    if (!RULE_ID.test(id)) throw new RuleError(400, 'rule ids are 2-64 lower-case letters, digits and -', 'id');
    const doc = this.docOf(id, def, { revision: 1, shipped: false, updatedBy: by, now: new Date() });
    try {
      await this.col.insertOne(doc);
    } catch (err) {
      if ((err as { code?: number }).code === 11000) throw new RuleError(409, `rule ${id} exists`, 'id');
      throw err;
    }
    return doc;
  }

  /** Replaces the definition: a new revision (its canary starts over), hold cleared. */
  async update(id: string, def: RuleDefinition, by: string): Promise<RuleDoc> {
    const cur = await this.get(id);
    if (!cur) throw new RuleError(404, `rule ${id} not found`);
    const next = this.docOf(id, def, { revision: cur.revision + 1, shipped: cur.shipped, updatedBy: by, now: new Date() });
    const { _id, createdAt: _c, ...set } = next;
    // A replacement: optional fields the new definition leaves out (a window, a canary …) go.
    const unset: Record<string, ''> = { held: '' };
    for (const k of Object.keys(RuleDefinition.shape)) if (!(k in set)) unset[k] = '';
    const doc = await this.col.findOneAndUpdate(
      { _id: id, revision: cur.revision },
      { $set: { ...set, ...(cur.shipped ? { modified: true } : {}) }, $unset: unset },
      { returnDocument: 'after' },
    );
    if (!doc) throw new RuleError(409, 'the rule changed meanwhile; read it again');
    return doc;
  }

  async setEnabled(id: string, enabled: boolean, by: string): Promise<RuleDoc> {
    const doc = await this.col.findOneAndUpdate(
      { _id: id },
      { $set: { enabled, updatedAt: new Date(), updatedBy: by }, ...(enabled ? { $unset: { held: '' } } : {}) },
      { returnDocument: 'after' },
    );
    if (!doc) throw new RuleError(404, `rule ${id} not found`);
    return doc;
  }

  async remove(id: string): Promise<void> {
    const cur = await this.get(id);
    if (!cur) throw new RuleError(404, `rule ${id} not found`);
    if (cur.shipped) throw new RuleError(409, 'shipped rules cannot be deleted; disable it');
    await this.col.deleteOne({ _id: id });
  }

  /** Rollout stopped by a failed canary (analysis). */
  async hold(id: string, revision: number, reason: string): Promise<void> {
    await this.col.updateOne({ _id: id, revision }, { $set: { held: { at: new Date(), reason } } });
  }

  async recordRun(id: string, run: NonNullable<RuleDoc['lastRun']>): Promise<void> {
    await this.col.updateOne({ _id: id }, { $set: { lastRun: run } });
  }
}

function strip(d: RuleDoc): Record<string, unknown> {
  const { _id, revision: _r, shipped: _s, createdAt: _c, updatedAt: _u, updatedBy: _b, lastRun: _l, held: _h, modified: _m, shippedVersion: _v, ...def } = d;
  return def;
}
