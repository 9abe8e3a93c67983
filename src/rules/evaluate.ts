// Rule evaluation (issue 5), pure: a rule's condition over one device's context, giving the
// decision and the facts it rests on (each test with the values seen and the threshold) — the
// explanation recorded with every remediation and shown by dry-runs. No I/O, no clock reads.
import { fieldsOf, type Condition, type Leaf, type Op, type RuleDefinition, type Scalar, type Value } from './model';

export interface SeenValue {
  name: string;
  value: string;
  /** When the value was learned (registry) or collected (snapshot). */
  at?: Date;
}

/** Everything a rule may read about one device (only what the analysis was allowed to load). */
export interface DeviceContext {
  id: string;
  /** "Device." or "InternetGatewayDevice."; undefined when the data model is unknown. */
  root?: string;
  registry: {
    softwareVersion?: string;
    modelName?: string;
    productClass: string;
    oui: string;
    manufacturer: string;
    dataModel?: string;
    tags: string[];
    online: boolean;
    offline: boolean;
    lastInformAgeS: number;
    lastBootAgeS?: number;
    /** Stored parameters by full name (the ones the rules asked for). */
    params: Map<string, SeenValue>;
  };
  /** Connection statistics (joined devices only): window → metric → value. */
  conn?: Record<string, Record<string, number>>;
  /** Latest diagnostic value per parameter (joined devices only). */
  diag?: Map<string, SeenValue>;
  derived?: Record<string, number>;
  vars: Record<string, Scalar>;
}

export interface Fact {
  test: string;
  field: string[];
  op: Op;
  agg?: string;
  threshold?: Value | Scalar | Scalar[];
  /** Values looked at (at most 10), with their names. */
  values: SeenValue[];
  matched: boolean;
  note?: string;
}

export interface Evaluation {
  matched: boolean;
  facts: Fact[];
  /** The first diag value that satisfied a test (fix templates use it). */
  match?: SeenValue;
}

const ROOTS = ['Device.', 'InternetGatewayDevice.'];
const isFull = (n: string) => ROOTS.some((r) => n.startsWith(r));

/** "A.{i}.B" → /^A\.(\d+)\.B$/ (cached). */
const patterns = new Map<string, RegExp>();
function patternOf(name: string): RegExp {
  let re = patterns.get(name);
  if (!re) {
    re = new RegExp('^' + name.split('.').map((s) => (s === '{i}' ? '(\\d+)' : s.replace(/[-]/g, '\\-'))).join('\\.') + '$');
    if (patterns.size > 10_000) patterns.clear();
    patterns.set(name, re);
  }
  return re;
}

/** Full names a root-relative or full name stands for on this device. */
function fullNames(name: string, root: string | undefined): string[] {
  if (isFull(name)) return [name];
  return root ? [root + name] : ROOTS.map((r) => r + name);
}

function lookup(map: Map<string, SeenValue> | undefined, name: string, root: string | undefined): SeenValue[] {
  if (!map) return [];
  const out: SeenValue[] = [];
  for (const full of fullNames(name, root)) {
    if (!full.includes('{i}')) {
      const v = map.get(full);
      if (v) out.push(v);
      continue;
    }
    const re = patternOf(full);
    for (const [n, v] of map) if (re.test(n)) out.push(v);
  }
  return out;
}

/** The values a field names for this device (several for {i} patterns and lists such as tags). */
export function valuesOf(field: string, ctx: DeviceContext): SeenValue[] {
  const dot = field.indexOf('.');
  const ns = field.slice(0, dot);
  const rest = field.slice(dot + 1);
  switch (ns) {
    case 'registry': {
      if (rest.startsWith('param.')) return lookup(ctx.registry.params, rest.slice(6), ctx.root);
      const r = ctx.registry as unknown as Record<string, unknown>;
      const v = r[rest];
      if (v === undefined) return [];
      if (Array.isArray(v)) return v.map((x) => ({ name: field, value: String(x) }));
      return [{ name: field, value: String(v) }];
    }
    case 'conn': {
      const [w, m] = rest.split('.');
      const v = ctx.conn?.[w]?.[m];
      return v === undefined ? [] : [{ name: field, value: String(v) }];
    }
    case 'diag':
      return lookup(ctx.diag, rest, ctx.root);
    case 'derived': {
      const v = ctx.derived?.[rest];
      return v === undefined ? [] : [{ name: field, value: String(v) }];
    }
    case 'var': {
      const v = ctx.vars[rest];
      return v === undefined ? [] : [{ name: field, value: String(v) }];
    }
    default:
      return [];
  }
}

export function parseBoolish(v: string): boolean | undefined {
  const s = v.trim().toLowerCase();
  if (s === 'true' || s === '1') return true;
  if (s === 'false' || s === '0') return false;
  return undefined;
}

const num = (v: unknown): number | undefined => {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v === 'string' && v.trim() !== '' && /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(v.trim())) return Number(v);
  return undefined;
};

/** Compares firmware versions: numeric parts as numbers, others as text; 1.2 < 1.2.1 < 1.10. */
export function compareVersions(a: string, b: string): number {
  const ta = a.match(/\d+|[A-Za-z]+/g) ?? [];
  const tb = b.match(/\d+|[A-Za-z]+/g) ?? [];
  // A leading letter prefix ("V1.2", "R3") on one side only is ignored.
  const alpha = (s: string | undefined) => s !== undefined && /^[A-Za-z]+$/.test(s);
  if (ta.length && tb.length && alpha(ta[0]) !== alpha(tb[0])) {
    if (alpha(ta[0])) ta.shift();
    else tb.shift();
  }
  for (let i = 0; i < Math.max(ta.length, tb.length); i++) {
    const x = ta[i];
    const y = tb[i];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    const nx = /^\d+$/.test(x) ? Number(x) : undefined;
    const ny = /^\d+$/.test(y) ? Number(y) : undefined;
    if (nx !== undefined && ny !== undefined) {
      if (nx !== ny) return nx < ny ? -1 : 1;
    } else if (x !== y) return x.toLowerCase() < y.toLowerCase() ? -1 : 1;
  }
  return 0;
}

function eq(v: string, t: Scalar): boolean {
  if (typeof t === 'boolean') return parseBoolish(v) === t;
  if (typeof t === 'number') return num(v) === t;
  return v === t;
}

/** One value against the threshold. */
export function test(op: Op, v: string, t: Value | Scalar[] | undefined): boolean {
  switch (op) {
    case 'eq':
      return eq(v, t as Scalar);
    case 'ne':
      return !eq(v, t as Scalar);
    case 'lt':
    case 'lte':
    case 'gt':
    case 'gte': {
      const a = num(v);
      const b = num(t);
      if (a === undefined || b === undefined) return false;
      return op === 'lt' ? a < b : op === 'lte' ? a <= b : op === 'gt' ? a > b : a >= b;
    }
    case 'in':
      return Array.isArray(t) && t.some((x) => eq(v, x));
    case 'notIn':
      return Array.isArray(t) && !t.some((x) => eq(v, x));
    case 'contains':
      return typeof t === 'string' && v.includes(t);
    case 'matches':
      return typeof t === 'string' && new RegExp(t).test(v);
    case 'versionLt':
    case 'versionLte':
    case 'versionGt':
    case 'versionGte': {
      if (t === undefined || typeof t === 'object') return false;
      const c = compareVersions(v, String(t));
      return op === 'versionLt' ? c < 0 : op === 'versionLte' ? c <= 0 : op === 'versionGt' ? c > 0 : c >= 0;
    }
    case 'exists':
      return true;
    case 'missing':
      return false;
  }
}

/** A threshold with {var} references replaced; undefined when a variable is not set. */
export function resolveValue(v: Value | undefined, vars: Record<string, Scalar>): { value?: Value; missingVar?: string } {
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
    const x = vars[v.var];
    return x === undefined ? { missingVar: v.var } : { value: x };
  }
  return { value: v };
}

const OP_TEXT: Record<Op, string> = {
  eq: '=',
  ne: '≠',
  lt: '<',
  lte: '≤',
  gt: '>',
  gte: '≥',
  in: 'in',
  notIn: 'not in',
  exists: 'exists',
  missing: 'missing',
  contains: 'contains',
  matches: 'matches',
  versionLt: 'version <',
  versionLte: 'version ≤',
  versionGt: 'version >',
  versionGte: 'version ≥',
};
export const opText = (op: Op): string => OP_TEXT[op];

function evalLeaf(l: Leaf, ctx: DeviceContext): { fact: Fact; match?: SeenValue } {
  const fields = fieldsOf(l);
  const values = fields.flatMap((f) => valuesOf(f, ctx));
  const label = l.label ?? `${fields[0]} ${opText(l.op)}${l.value !== undefined ? ' ' + JSON.stringify(l.value) : ''}`;
  const fact: Fact = { test: label, field: fields, op: l.op, values: values.slice(0, 10), matched: false };
  if (l.agg) fact.agg = l.agg;
  if (l.op === 'exists' || l.op === 'missing') {
    fact.matched = l.op === 'exists' ? values.length > 0 : values.length === 0;
    return { fact };
  }
  const r = resolveValue(l.value, ctx.vars);
  if (r.missingVar) {
    fact.note = `variable ${r.missingVar} is not set for this device`;
    return { fact };
  }
  fact.threshold = r.value;
  const agg = l.agg ?? 'any';
  if (agg === 'count') {
    fact.matched = test(l.op, String(values.length), r.value);
    return { fact };
  }
  if (!values.length) {
    fact.note = 'no data';
    return { fact };
  }
  if (agg === 'sum' || agg === 'max' || agg === 'min') {
    const nums = values.map((v) => num(v.value)).filter((x): x is number => x !== undefined);
    if (!nums.length) {
      fact.note = 'no numeric values';
      return { fact };
    }
    const x = agg === 'sum' ? nums.reduce((a, b) => a + b, 0) : agg === 'max' ? Math.max(...nums) : Math.min(...nums);
    fact.note = `${agg} = ${x}`;
    fact.matched = test(l.op, String(x), r.value);
    return { fact, ...(fact.matched ? { match: values[0] } : {}) };
  }
  if (agg === 'all') {
    fact.matched = values.every((v) => test(l.op, v.value, r.value));
    return { fact, ...(fact.matched ? { match: values[0] } : {}) };
  }
  const hit = values.find((v) => test(l.op, v.value, r.value));
  fact.matched = hit !== undefined;
  if (hit) fact.values = [hit, ...values.filter((v) => v !== hit)].slice(0, 10);
  return { fact, ...(hit ? { match: hit } : {}) };
}

function evalCond(c: Condition, ctx: DeviceContext, facts: Fact[], matches: SeenValue[]): boolean {
  if ('all' in c) {
    let ok = true;
    for (const x of c.all) if (!evalCond(x, ctx, facts, matches)) ok = false; // every test is recorded
    return ok;
  }
  if ('any' in c) {
    let ok = false;
    for (const x of c.any) if (evalCond(x, ctx, facts, matches)) ok = true;
    return ok;
  }
  if ('not' in c) {
    const inner: Fact[] = [];
    const r = !evalCond(c.not, ctx, inner, []);
    for (const f of inner) facts.push({ ...f, test: `not (${f.test})` });
    return r;
  }
  const { fact, match } = evalLeaf(c, ctx);
  facts.push(fact);
  if (match && c.field.toString().includes('diag.')) matches.push(match);
  return fact.matched;
}

export function evaluate(def: Pick<RuleDefinition, 'condition'>, ctx: DeviceContext): Evaluation {
  const facts: Fact[] = [];
  const matches: SeenValue[] = [];
  const matched = evalCond(def.condition, ctx, facts, matches);
  return { matched, facts, ...(matched && matches.length ? { match: matches[0] } : {}) };
}

/** The variables of a rule for a device: defaults, then the first matching model entry, then device tags var:<name>:<value>. */
export function variablesFor(def: Pick<RuleDefinition, 'variables'>, dev: DeviceContext['registry']): Record<string, Scalar> {
  const out: Record<string, Scalar> = { ...(def.variables?.defaults ?? {}) };
  for (const m of def.variables?.byModel ?? []) {
    const k = m.match;
    if (k.manufacturer !== undefined && k.manufacturer !== dev.manufacturer) continue;
    if (k.oui !== undefined && k.oui !== dev.oui) continue;
    if (k.productClass !== undefined && k.productClass !== dev.productClass) continue;
    if (k.modelName !== undefined && k.modelName !== dev.modelName) continue;
    Object.assign(out, m.values);
    break;
  }
  for (const t of dev.tags) {
    const m = /^var:([A-Za-z][A-Za-z0-9_]{0,63}):(.+)$/.exec(t);
    if (m) out[m[1]] = m[2];
  }
  return out;
}

// ---- templates --------------------------------------------------------------------------------

export interface TemplateContext {
  root: string;
  vars: Record<string, Scalar>;
  match?: SeenValue;
  config: Record<string, string | undefined>;
}

export class TemplateError extends Error {}

function templateValue(key: string, t: TemplateContext): string {
  if (key === 'root') return t.root;
  if (key.startsWith('vars.')) {
    const v = t.vars[key.slice(5)];
    if (v === undefined) throw new TemplateError(`variable ${key.slice(5)} is not set for this device`);
    return String(v);
  }
  if (key.startsWith('match.')) {
    if (!t.match) throw new TemplateError(`{{${key}}} needs a matched diagnostic value`);
    const path = t.match.name;
    const inst = [...path.matchAll(/\.(\d+)(?=\.)/g)].map((m) => m[1]);
    switch (key) {
      case 'match.path':
        return path;
      case 'match.object':
        return path.slice(0, path.lastIndexOf('.') + 1);
      case 'match.value':
        return t.match.value;
      case 'match.i1':
      case 'match.i2':
      case 'match.i3': {
        const v = inst[Number(key.slice(-1)) - 1];
        if (v === undefined) throw new TemplateError(`{{${key}}}: ${path} has no such instance number`);
        return v;
      }
    }
  }
  if (key.startsWith('config.')) {
    const v = t.config[key.slice(7)];
    if (!v) throw new TemplateError(`{{${key}}} is not configured on this ACS`);
    return v;
  }
  throw new TemplateError(`unknown template {{${key}}}`);
}

export function expandString(s: string, t: TemplateContext): string {
  return s.replace(/\{\{\s*([A-Za-z0-9_.]+)\s*\}\}/g, (_m, k: string) => templateValue(k, t));
}

/** Deep copy with every string's templates expanded. */
export function expand<T>(x: T, t: TemplateContext): T {
  if (typeof x === 'string') return expandString(x, t) as T;
  if (Array.isArray(x)) return x.map((e) => expand(e, t)) as T;
  if (x && typeof x === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(x)) out[k] = expand(v, t);
    return out as T;
  }
  return x;
}

/** Explanation text of a decision. */
export function explain(ruleName: string, revision: number, facts: Fact[], action: string): string {
  const shown = facts
    .filter((f) => f.matched)
    .map((f) => {
      const vals = f.values.slice(0, 3).map((v) => `${v.name}=${v.value}`).join(', ');
      const thr = f.threshold !== undefined ? ` (threshold ${JSON.stringify(f.threshold)})` : '';
      return `${f.test}${thr}${vals ? `: ${vals}` : ''}${f.note ? ` [${f.note}]` : ''}`;
    });
  return `Rule "${ruleName}" (revision ${revision}) fired because ${shown.join('; ') || 'its condition held'}. Decision: ${action}.`;
}
