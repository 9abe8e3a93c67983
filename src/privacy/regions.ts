// Region-bound storage (issue 4, rule 6 of diagnostics.md): each device belongs to a region,
// each region has its own MongoDB, and a device's diagnostic data is written only to its
// region's database. Owner of `region_assignments` (an operator's explicit choice per device).
//
// ACS_REGIONS (JSON), e.g.
//   [{"name":"eu","mongodbUrl":"mongodb://eu-db/","db":"acs","ipPrefixes":["10.1.0.0/16"],"default":true},
//    {"name":"cn","mongodbUrl":"mongodb://cn-db/","db":"acs","serialPrefixes":["CN"]}]
// Rules, in order: operator assignment, serial-number prefix, IP prefix of the address the
// device connects from (CIDR, IPv4 or IPv6), else the default region. Without ACS_REGIONS
// there is one region, "default", stored in the main database.
import { BlockList } from 'node:net';
import { parseCidr, plainIp } from '../net-address';
import type { Collection, Db } from 'mongodb';
import { z } from 'zod';
import { connectDatabase, ensureIndexes, type Database } from '../db';
import type { Logger } from '../logger';

const Cidr = z.string().max(64).refine((s) => parseCidr(s) !== null, 'must be a CIDR prefix such as 10.0.0.0/8 or 2001:db8::/32');

export const RegionSchema = z.strictObject({
  name: z.string().regex(/^[a-z][a-z0-9-]{0,31}$/, 'region names are lower-case words'),
  /** Default: the main MONGODB_URL. */
  mongodbUrl: z.string().min(1).max(1000).optional(),
  /** Default: the main database name. */
  db: z.string().regex(/^[A-Za-z0-9_-]{1,63}$/).optional(),
  serialPrefixes: z.array(z.string().min(1).max(64)).max(1000).default([]),
  ipPrefixes: z.array(Cidr).max(1000).default([]),
  default: z.boolean().default(false),
  description: z.string().max(200).optional(),
});
export const RegionsSchema = z
  .array(RegionSchema)
  .min(1)
  .superRefine((list, ctx) => {
    const names = new Set<string>();
    list.forEach((r, i) => {
      if (names.has(r.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `region ${r.name} appears twice` });
      names.add(r.name);
    });
    if (list.filter((r) => r.default).length > 1) ctx.addIssue({ code: 'custom', path: [], message: 'at most one default region' });
  });
export type RegionConfig = z.output<typeof RegionSchema>;

/** Parses ACS_REGIONS; undefined or empty → the single default region. */
export function parseRegions(raw: string | undefined): RegionConfig[] {
  if (!raw || !raw.trim()) return [{ name: 'default', serialPrefixes: [], ipPrefixes: [], default: true }];
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    throw new Error('ACS_REGIONS must be a JSON array of regions');
  }
  const r = RegionsSchema.safeParse(json);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new Error(`ACS_REGIONS is invalid at "${i.path.join('.')}": ${i.message}`);
  }
  const list = r.data;
  if (!list.some((x) => x.default)) list[0].default = true;
  return list;
}

export interface RegionAssignment {
  _id: string;
  region: string;
  by: string;
  at: Date;
}

export interface RegionDecision {
  region: string;
  rule: 'assignment' | 'serial' | 'ip' | 'default';
}

interface Regional {
  config: RegionConfig;
  lists: BlockList;
  database?: Database;
  db: Db;
}

export class Regions {
  readonly col: Collection<RegionAssignment>;
  private readonly regions = new Map<string, Regional>();
  private readonly order: string[] = [];
  readonly defaultRegion: string;

  private constructor(
    main: Database,
    readonly configs: RegionConfig[],
    private readonly log: Logger,
  ) {
    this.col = main.db.collection<RegionAssignment>('region_assignments');
    this.defaultRegion = configs.find((c) => c.default)!.name;
  }

  /** Connects every region's database (regions without their own URL and db share the main one). */
  static async open(main: Database, mainUrl: string, mainDb: string, configs: RegionConfig[], log: Logger): Promise<Regions> {
    const r = new Regions(main, configs, log);
    const clients = new Map<string, Database>();
    for (const c of configs) {
      const lists = new BlockList();
      for (const p of c.ipPrefixes) {
        const x = parseCidr(p)!;
        lists.addSubnet(x.address, x.prefix, x.family);
      }
      const url = c.mongodbUrl ?? mainUrl;
      const dbName = c.db ?? mainDb;
      let db: Db;
      let database: Database | undefined;
      if (url === mainUrl) db = main.client.db(dbName);
      else {
        database = clients.get(url);
        if (!database) {
          database = await connectDatabase(url, dbName);
          clients.set(url, database);
        }
        db = database.client.db(dbName);
      }
      r.regions.set(c.name, { config: c, lists, database, db });
      r.order.push(c.name);
    }
    await ensureIndexes(r.col, [{ key: { region: 1 } }]);
    log.info({ regions: configs.map((c) => c.name), default: r.defaultRegion }, 'storage regions');
    return r;
  }

  get names(): string[] {
    return [...this.order];
  }

  has(name: string): boolean {
    return this.regions.has(name);
  }

  /** The region's database (for the modules that own regional collections). */
  db(name: string): Db {
    const r = this.regions.get(name);
    if (!r) throw new Error(`unknown region ${name}`);
    return r.db;
  }

  /** Every region's database, once each (a region may share a database with another). */
  all(): { name: string; db: Db }[] {
    const seen = new Set<string>();
    const out: { name: string; db: Db }[] = [];
    for (const name of this.order) {
      const r = this.regions.get(name)!;
      const key = `${r.config.mongodbUrl ?? ''}|${r.db.databaseName}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push({ name, db: r.db });
    }
    return out;
  }

  /** The rule-based region, ignoring assignments. */
  byRules(serial: string | undefined, ip: string | undefined): RegionDecision {
    if (serial) {
      for (const name of this.order) {
        const c = this.regions.get(name)!.config;
        if (c.serialPrefixes.some((p) => serial.startsWith(p))) return { region: name, rule: 'serial' };
      }
    }
    const addr = plainIp(ip);
    if (addr) {
      for (const name of this.order) {
        if (this.regions.get(name)!.lists.check(addr.ip, addr.family)) return { region: name, rule: 'ip' };
      }
    }
    return { region: this.defaultRegion, rule: 'default' };
  }

  async resolve(device: string, serial: string | undefined, ip: string | undefined): Promise<RegionDecision> {
    const a = await this.col.findOne({ _id: device });
    if (a && this.regions.has(a.region)) return { region: a.region, rule: 'assignment' };
    return this.byRules(serial, ip);
  }

  async assign(device: string, region: string | null, by: string): Promise<void> {
    if (region === null) {
      await this.col.deleteOne({ _id: device });
      return;
    }
    if (!this.regions.has(region)) throw Object.assign(new Error(`unknown region ${region}`), { status: 400 });
    await this.col.replaceOne({ _id: device }, { region, by, at: new Date() }, { upsert: true });
  }

  async assignment(device: string): Promise<RegionAssignment | null> {
    return this.col.findOne({ _id: device });
  }

  async erase(device: string): Promise<number> {
    return (await this.col.deleteOne({ _id: device })).deletedCount;
  }

  async close(): Promise<void> {
    const closed = new Set<Database>();
    for (const r of this.regions.values()) {
      if (r.database && !closed.has(r.database)) {
        closed.add(r.database);
        await r.database.close().catch((err) => this.log.warn({ err: (err as Error).message }, 'closing a region database failed'));
      }
    }
  }
}
