// The collection profile (issue 4): which parameters may be pulled for the diagnostics
// program, grouped by category, as data. Owner of the `diagnostics_profile` collection (the
// active profile when an admin changed it through the API).
//
// Sources, in order: the stored profile (API changes), a JSON file (ACS_DIAGNOSTICS_PROFILE)
// that replaces the stored one when its `revision` is higher, the shipped default
// (default-profile.ts). Every source is validated with the same zod schema: a broken profile
// stops the start rather than collecting the wrong things.
import { readFileSync } from 'node:fs';
import type { Collection, Db } from 'mongodb';
import { z } from 'zod';
import { IDENTIFIER_KINDS, type IdentifierKind } from '../privacy/crypto';
import type { Logger } from '../logger';
import { DEFAULT_PROFILE } from './default-profile';

export type DataModelKey = 'tr181' | 'tr098';
export type Protection = 'plain' | 'pseudonymise' | 'encrypt';

/** Categories that are sensitive whatever a profile says. */
export const ALWAYS_SENSITIVE = ['location', 'communications'];

const SEGMENT = '(?:[A-Za-z_][A-Za-z0-9_-]*|\\{i\\}|\\d+)';
const PATH_RE = new RegExp(`^(Device|InternetGatewayDevice)(?:\\.${SEGMENT})+$`);

const Protection = z.enum(['plain', 'pseudonymise', 'encrypt']);
const PathText = z
  .string()
  .max(256)
  .regex(PATH_RE, 'must be a full parameter name under Device. or InternetGatewayDevice., {i} for any instance number, no trailing "." or "*"');
const PathEntry = z.union([
  PathText,
  z.strictObject({
    path: PathText,
    protection: Protection.optional(),
    identifier: z.enum(IDENTIFIER_KINDS as [IdentifierKind, ...IdentifierKind[]]).optional(),
  }),
]);
const ModelLists = z.strictObject({ tr181: z.array(PathEntry).max(500).default([]), tr098: z.array(PathEntry).max(500).default([]) });

export const CategorySchema = z.strictObject({
  description: z.string().max(500),
  sensitive: z.boolean().default(false),
  enabled: z.boolean(),
  intervalSeconds: z.number().int().min(0).max(365 * 86_400).describe('0 = only on events and requests'),
  triggers: z.array(z.string().min(1).max(64)).max(20).default([]).describe('Inform event codes that make the category due'),
  protection: Protection.default('plain'),
  analytics: z.boolean().default(true).describe('false: never handed to analysis'),
  tr181: z.array(PathEntry).max(500).default([]),
  tr098: z.array(PathEntry).max(500).default([]),
  vendor: ModelLists.default({ tr181: [], tr098: [] }),
});

export const ProfileSchema = z
  .strictObject({
    revision: z.number().int().min(1),
    management: z.strictObject({ tr181: z.array(PathText).max(200), tr098: z.array(PathText).max(200) }),
    categories: z.record(z.string().regex(/^[a-z][a-z0-9-]{0,31}$/, 'category names are lower-case words'), CategorySchema),
  })
  .superRefine((p, ctx) => {
    const rootOf: Record<DataModelKey, string> = { tr181: 'Device.', tr098: 'InternetGatewayDevice.' };
    for (const model of ['tr181', 'tr098'] as const) {
      p.management[model].forEach((path, i) => {
        if (!path.startsWith(rootOf[model])) ctx.addIssue({ code: 'custom', path: ['management', model, i], message: `must start with ${rootOf[model]}` });
      });
    }
    for (const [name, c] of Object.entries(p.categories)) {
      if (ALWAYS_SENSITIVE.includes(name) && !c.sensitive) {
        ctx.addIssue({ code: 'custom', path: ['categories', name, 'sensitive'], message: `${name} is always a sensitive category` });
      }
      const lists: [string[], unknown[], boolean][] = [
        [[name, 'tr181'], c.tr181, false],
        [[name, 'tr098'], c.tr098, false],
        [[name, 'vendor', 'tr181'], c.vendor.tr181, true],
        [[name, 'vendor', 'tr098'], c.vendor.tr098, true],
      ];
      for (const [where, list, vendor] of lists) {
        const model = where[where.length - 1] as DataModelKey;
        list.forEach((e, i) => {
          const entry = normaliseEntry(e as z.infer<typeof PathEntry>);
          const path = ['categories', ...where, i];
          if (!entry.path.startsWith(rootOf[model])) ctx.addIssue({ code: 'custom', path, message: `must start with ${rootOf[model]}` });
          const isVendor = entry.path.split('.').some((s) => s.startsWith('X_'));
          if (vendor && !isVendor) ctx.addIssue({ code: 'custom', path, message: 'vendor entries must name an X_ extension' });
          if (!vendor && isVendor) ctx.addIssue({ code: 'custom', path, message: 'X_ extensions belong under "vendor"' });
          const prot = entry.protection ?? c.protection;
          if (c.sensitive && prot !== 'encrypt') ctx.addIssue({ code: 'custom', path, message: 'values of sensitive categories must be encrypted' });
        });
      }
      if (name === 'communications' && c.analytics) {
        ctx.addIssue({ code: 'custom', path: ['categories', name, 'analytics'], message: 'communications data is never used in analytics' });
      }
    }
  });

export type ProfileInput = z.input<typeof ProfileSchema>;
export type ProfileData = z.output<typeof ProfileSchema>;
export type CategoryData = z.output<typeof CategorySchema>;

function normaliseEntry(e: string | { path: string; protection?: Protection; identifier?: IdentifierKind }): {
  path: string;
  protection?: Protection;
  identifier?: IdentifierKind;
} {
  return typeof e === 'string' ? { path: e } : e;
}

/** The identifier kind of a pseudonymised parameter, from its name when the profile does not say. */
export function identifierOf(path: string): IdentifierKind {
  const leaf = path.slice(path.lastIndexOf('.') + 1);
  if (/SerialNumber$/.test(leaf)) return 'serial';
  if (/(MACAddress|BSSID|PhysAddress)$/.test(leaf)) return 'mac';
  if (/IMEI$/.test(leaf)) return 'imei';
  if (/IMSI$/.test(leaf)) return 'imsi';
  if (/ICCID$/.test(leaf)) return 'iccid';
  if (/MSISDN$/.test(leaf)) return 'msisdn';
  if (/(IPAddress|Address)$/.test(leaf)) return 'ip';
  return 'other';
}

/** "A.{i}.B" → /^A\.\d+\.B$/ */
export function patternRegex(pattern: string): RegExp {
  return new RegExp('^' + pattern.split('.').map((s) => (s === '{i}' ? '\\d+' : s.replace(/[-]/g, '\\-'))).join('\\.') + '$');
}

/**
 * Whether `name` (a parameter name or a partial path ending in ".", "" for everything) covers
 * some instance of `pattern`: the partial path is a prefix of it, or the name matches it.
 */
export function covers(name: string, pattern: string): boolean {
  if (name === '') return true;
  const p = pattern.split('.');
  if (!name.endsWith('.')) return patternRegex(pattern).test(name);
  const n = name.slice(0, -1).split('.');
  if (n.length > p.length) return false;
  for (let i = 0; i < n.length; i++) {
    if (p[i] === '{i}' ? !/^\d+$/.test(n[i]) : p[i] !== n[i]) return false;
  }
  return true;
}

export interface ProfileEntry {
  category: string;
  pattern: string;
  re: RegExp;
  protection: Protection;
  identifier: IdentifierKind;
  vendor: boolean;
  /** The partial path before the first {i} (for GetParameterNames discovery), or null. */
  wildcardRoot: string | null;
}

export interface CategoryView {
  name: string;
  description: string;
  sensitive: boolean;
  enabled: boolean;
  intervalSeconds: number;
  triggers: string[];
  analytics: boolean;
}

export const modelOfRoot = (root: string | undefined): DataModelKey | null =>
  root === 'Device.' ? 'tr181' : root === 'InternetGatewayDevice.' ? 'tr098' : null;

export const modelOfPath = (path: string): DataModelKey | null =>
  path.startsWith('Device.') ? 'tr181' : path.startsWith('InternetGatewayDevice.') ? 'tr098' : null;

/** A validated profile with its lookups built. */
export class CompiledProfile {
  readonly entries: Record<DataModelKey, ProfileEntry[]> = { tr181: [], tr098: [] };
  private readonly management: Record<DataModelKey, RegExp[]>;
  private readonly memo = new Map<string, ProfileEntry | null>();

  constructor(readonly data: ProfileData) {
    this.management = { tr181: data.management.tr181.map(patternRegex), tr098: data.management.tr098.map(patternRegex) };
    for (const [name, c] of Object.entries(data.categories)) {
      for (const model of ['tr181', 'tr098'] as const) {
        const all = [...c[model].map((e) => [e, false] as const), ...c.vendor[model].map((e) => [e, true] as const)];
        for (const [raw, vendor] of all) {
          const e = normaliseEntry(raw);
          const segs = e.path.split('.');
          const wi = segs.indexOf('{i}');
          const protection = e.protection ?? c.protection;
          this.entries[model].push({
            category: name,
            pattern: e.path,
            re: patternRegex(e.path),
            protection,
            identifier: e.identifier ?? identifierOf(e.path),
            vendor,
            wildcardRoot: wi < 0 ? null : segs.slice(0, wi).join('.') + '.',
          });
        }
      }
    }
  }

  get revision(): number {
    return this.data.revision;
  }

  categories(): CategoryView[] {
    return Object.entries(this.data.categories).map(([name, c]) => ({
      name,
      description: c.description,
      sensitive: c.sensitive,
      enabled: c.enabled,
      intervalSeconds: c.intervalSeconds,
      triggers: c.triggers,
      analytics: c.analytics,
    }));
  }

  category(name: string): CategoryData | undefined {
    return this.data.categories[name];
  }

  enabled(name: string): boolean {
    return this.data.categories[name]?.enabled === true;
  }

  /** The profile entry a parameter name falls under (first match), or null. */
  classify(name: string): ProfileEntry | null {
    const hit = this.memo.get(name);
    if (hit !== undefined) return hit;
    const model = modelOfPath(name);
    const found = model ? (this.entries[model].find((e) => e.re.test(name)) ?? null) : null;
    if (this.memo.size > 50_000) this.memo.clear();
    this.memo.set(name, found);
    return found;
  }

  isManagement(name: string): boolean {
    const model = modelOfPath(name);
    return model !== null && this.management[model].some((re) => re.test(name));
  }

  /** On the profile and not needed for plain management: kept only for joined devices. */
  diagnosticOnly(name: string): boolean {
    return !this.isManagement(name) && this.classify(name) !== null;
  }

  /** Diagnostics-only profile entries a parameter name or partial path covers. */
  touched(nameOrPath: string): ProfileEntry[] {
    const model = modelOfPath(nameOrPath);
    const lists = nameOrPath === '' ? [...this.entries.tr181, ...this.entries.tr098] : model ? this.entries[model] : [];
    return lists.filter((e) => covers(nameOrPath, e.pattern) && !this.managementPattern(e.pattern));
  }

  private managementPattern(pattern: string): boolean {
    const model = modelOfPath(pattern);
    return model !== null && this.data.management[model].includes(pattern);
  }

  /** Entries of enabled categories for a data model (optionally only some categories). */
  enabledEntries(model: DataModelKey, categories?: readonly string[]): ProfileEntry[] {
    return this.entries[model].filter((e) => this.enabled(e.category) && (!categories || categories.includes(e.category)));
  }

  /**
   * Why a name may not be pulled for diagnostics, or null when it may: a leaf on an enabled
   * category's allowlist, or a partial path that is the discovery root of one.
   */
  refusalFor(name: string): string | null {
    if (name.endsWith('.')) {
      const model = modelOfPath(name);
      const roots = model ? this.entries[model].filter((e) => e.wildcardRoot === name) : [];
      if (!roots.length) return `${name} is not an instance table of the collection profile`;
      if (!roots.some((e) => this.enabled(e.category))) return `category ${roots[0].category} is disabled`;
      return null;
    }
    const e = this.classify(name);
    if (!e) return `${name} is not on the collection profile`;
    if (!this.enabled(e.category)) {
      const c = this.data.categories[e.category];
      return `category ${e.category} is disabled${c.sensitive ? ' (sensitive: an admin must enable it)' : ''}`;
    }
    return null;
  }
}

/** Validates a profile; throws an Error naming the first problem. */
export function parseProfile(input: unknown, source: string): ProfileData {
  const r = ProfileSchema.safeParse(input);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new Error(`collection profile (${source}) is invalid at "${i.path.join('.')}": ${i.message}`);
  }
  return r.data;
}

interface StoredProfile {
  _id: 'active';
  profile: ProfileData;
  updatedAt: Date;
  updatedBy: string;
  source: string;
}

const REFRESH_MS = 5_000;

/** The active profile, shared by every ACS process through the database. */
export class ProfileStore {
  readonly col: Collection<StoredProfile>;
  private compiled: CompiledProfile;
  private loadedAt = 0;
  private refreshing: Promise<void> | null = null;

  constructor(
    db: Db,
    private readonly log: Logger,
    private readonly file?: string,
  ) {
    this.col = db.collection<StoredProfile>('diagnostics_profile');
    this.compiled = new CompiledProfile(parseProfile(DEFAULT_PROFILE, 'shipped default'));
  }

  /** Loads (and, from a newer file, installs) the profile. Throws on an invalid file. */
  async init(): Promise<void> {
    let fromFile: ProfileData | undefined;
    if (this.file) {
      let raw: unknown;
      try {
        raw = JSON.parse(readFileSync(this.file, 'utf8'));
      } catch (err) {
        throw new Error(`collection profile ${this.file}: ${(err as Error).message}`);
      }
      fromFile = parseProfile(raw, this.file);
    }
    const stored = await this.col.findOne({ _id: 'active' });
    let active: ProfileData;
    if (stored) {
      active = parseProfile(stored.profile, 'database');
      if (fromFile && fromFile.revision > active.revision) {
        await this.save(fromFile, 'file', this.file!);
        active = fromFile;
        this.log.info({ revision: active.revision, file: this.file }, 'collection profile installed from file');
      }
    } else {
      active = fromFile ?? this.compiled.data;
      if (fromFile) await this.save(fromFile, 'file', this.file!);
    }
    this.compiled = new CompiledProfile(active);
    this.loadedAt = Date.now();
  }

  private async save(p: ProfileData, by: string, source: string): Promise<void> {
    await this.col.replaceOne({ _id: 'active' }, { profile: p, updatedAt: new Date(), updatedBy: by, source }, { upsert: true });
  }

  /** The profile as last loaded (refreshed from the database every few seconds). */
  async current(): Promise<CompiledProfile> {
    if (Date.now() - this.loadedAt > REFRESH_MS) {
      this.refreshing ??= this.refresh().finally(() => (this.refreshing = null));
      await this.refreshing;
    }
    return this.compiled;
  }

  /** Without waiting for a refresh (hot paths that tolerate a few seconds' delay). */
  get cached(): CompiledProfile {
    if (Date.now() - this.loadedAt > REFRESH_MS) void this.current().catch(() => undefined);
    return this.compiled;
  }

  private async refresh(): Promise<void> {
    try {
      const stored = await this.col.findOne({ _id: 'active' });
      if (stored && stored.profile.revision !== this.compiled.revision) this.compiled = new CompiledProfile(parseProfile(stored.profile, 'database'));
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'collection profile refresh failed; keeping the loaded one');
    }
    this.loadedAt = Date.now();
  }

  /** Replaces the profile (admin). The revision must grow so every process notices. */
  async replace(input: unknown, by: string): Promise<CompiledProfile> {
    const p = parseProfile(input, 'API');
    const cur = await this.current();
    if (p.revision <= cur.revision) throw Object.assign(new Error(`revision must be greater than ${cur.revision}`), { status: 409 });
    return this.install(p, by);
  }

  /** Changes one category's switch or interval (admin); bumps the revision. */
  async updateCategory(name: string, patch: { enabled?: boolean; intervalSeconds?: number }, by: string): Promise<CompiledProfile> {
    const cur = await this.current();
    const c = cur.data.categories[name];
    if (!c) throw Object.assign(new Error(`category ${name} not found`), { status: 404 });
    const next: ProfileData = structuredClone(cur.data);
    next.revision = cur.revision + 1;
    next.categories[name] = { ...c, ...(patch.enabled !== undefined ? { enabled: patch.enabled } : {}), ...(patch.intervalSeconds !== undefined ? { intervalSeconds: patch.intervalSeconds } : {}) };
    return this.install(parseProfile(next, 'API'), by);
  }

  private async install(p: ProfileData, by: string): Promise<CompiledProfile> {
    await this.save(p, by, 'api');
    this.compiled = new CompiledProfile(p);
    this.loadedAt = Date.now();
    return this.compiled;
  }
}
