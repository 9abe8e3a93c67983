// Rules (issue 5), pure parts: the model's validation, evaluation, templates, time zones and
// maintenance windows, the statistics derived from rollups and snapshots.
import assert from 'node:assert/strict';
import { connStats, mergeSnapshots, wanReconnects } from '../../src/rules/analysis';
import { compareVersions, evaluate, expand, explain, TemplateError, variablesFor, type DeviceContext } from '../../src/rules/evaluate';
import { parseRule, RuleDefinition, scopeOf, type RuleDefinition as Def } from '../../src/rules/model';
import { SHIPPED_RULES } from '../../src/rules/shipped';
import { deviceZone, offsetAt, parsePosixTz, windowAt, zoneFrom } from '../../src/rules/window';
import type { SnapshotDoc } from '../../src/diagnostics/snapshots';
import type { DailyDoc } from '../../src/rollups';

function ctx(p: Partial<Omit<DeviceContext, 'diag'>> & { params?: Record<string, string>; diag?: Record<string, string> } = {}): DeviceContext {
  const params = new Map(Object.entries(p.params ?? {}).map(([n, v]) => [n, { name: n, value: v }]));
  const diag = p.diag ? new Map(Object.entries(p.diag).map(([n, v]) => [n, { name: n, value: v }])) : undefined;
  return {
    id: 'D1',
    root: p.root ?? 'Device.',
    registry: { productClass: 'R1', oui: '0090D0', manufacturer: 'Acme', tags: [], online: true, offline: false, lastInformAgeS: 10, params, ...(p.registry ?? {}) },
    ...(diag ? { diag } : {}),
    ...(p.conn ? { conn: p.conn } : {}),
    ...(p.derived ? { derived: p.derived } : {}),
    vars: p.vars ?? {},
  };
}

const base = (over: Partial<Def>): Def =>
  parseRule({ name: 't', condition: { field: 'registry.softwareVersion', op: 'exists' }, action: { kind: 'advisory', advice: 'x' }, cooldownSeconds: 3600, ...over }, 'test');

describe('rules: model (unit)', () => {
  it('validates every shipped rule and derives its scope', () => {
    const scopes: Record<string, string> = {};
    for (const s of SHIPPED_RULES) scopes[s.id] = scopeOf(parseRule(s.definition, s.id));
    assert.deepEqual(scopes, {
      'firmware-minimum': 'all',
      'periodic-inform': 'all',
      'frequent-disconnects': 'joined',
      'unexpected-restarts': 'joined',
      'wifi-driver-error': 'joined',
      'wifi-coverage': 'joined',
      'wifi-weak-security': 'joined',
      'data-limit': 'joined',
    });
  });

  it('refuses bad rules with the field at fault', () => {
    const bad = (x: unknown, re: RegExp) => assert.throws(() => parseRule(x, 'r'), re);
    const ok = { name: 'n', condition: { field: 'registry.softwareVersion', op: 'exists' }, action: { kind: 'advisory', advice: 'a' }, cooldownSeconds: 60 };
    bad({ ...ok, condition: { field: 'registry.nope', op: 'exists' } }, /condition.*registry\.nope/);
    bad({ ...ok, condition: { field: 'conn.month.boots', op: 'gt', value: 1 } }, /conn\./);
    bad({ ...ok, condition: { field: 'diag.A.B', op: 'gt' } }, /needs a value/);
    bad({ ...ok, condition: { field: 'diag.A', op: 'matches', value: '(' } }, /regular expression/);
    bad({ ...ok, action: { kind: 'fix' } }, /needs tasks/);
    bad({ ...ok, action: { kind: 'fix', tasks: [{ name: 'factoryReset' }] } }, /action\.tasks\.0\.name/);
    bad({ ...ok, cooldownSeconds: 1 }, /cooldownSeconds/);
    bad({ ...ok, window: { start: '25:00', end: '03:00' } }, /window\.start/);
    bad({ ...ok, window: { start: '01:00', end: '03:00', timeZone: 'Mars/Olympus' } }, /time zone/);
    bad({ ...ok, rollout: { maxPerRun: 5, canary: {} } }, /devices or share/);
    bad({ ...ok, extra: 1 }, /extra/);
    assert.equal(RuleDefinition.safeParse(ok).success, true);
  });

  it('a rule that reads registry parameters the profile marks diagnostics-only, or uploads a log, is for joined devices only', () => {
    const r = base({ condition: { field: 'registry.param.WiFi.Radio.1.Channel', op: 'eq', value: 1 } });
    assert.equal(scopeOf(r), 'all');
    assert.equal(scopeOf(r, (n) => n.includes('WiFi')), 'joined');
    assert.equal(scopeOf(base({ action: { kind: 'fix', tasks: [{ name: 'upload', fileType: '2 Vendor Log File', url: 'http://x/' }] } })), 'joined');
  });
});

describe('rules: evaluation (unit)', () => {
  it('compares versions numerically, with letters and prefixes', () => {
    assert.ok(compareVersions('1.2.9', '1.2.10') < 0);
    assert.ok(compareVersions('1.2', '1.2.1') < 0);
    assert.ok(compareVersions('V2.0', '1.9.9') > 0);
    assert.equal(compareVersions('2.0.0', '2.0.0'), 0);
    assert.ok(compareVersions('1.0b', '1.0c') < 0);
  });

  it('evaluates leaves over instances, alternatives and aggregates, and records the facts', () => {
    const c = ctx({ diag: { 'Device.WiFi.Radio.1.X_VENDOR_DriverErrors': '0', 'Device.WiFi.Radio.2.X_VENDOR_DriverErrors': '4' } });
    const rule = base({ condition: { field: ['diag.WiFi.Radio.{i}.X_VENDOR_DriverErrors', 'diag.LANDevice.{i}.WLANConfiguration.{i}.X_VENDOR_DriverErrors'], op: 'gt', value: 0 } });
    const e = evaluate(rule, c);
    assert.equal(e.matched, true);
    assert.equal(e.match?.name, 'Device.WiFi.Radio.2.X_VENDOR_DriverErrors');
    assert.equal(e.facts[0].values[0].value, '4');
    assert.equal(evaluate(base({ condition: { field: 'diag.WiFi.Radio.{i}.X_VENDOR_DriverErrors', op: 'gt', value: 0, agg: 'all' } }), c).matched, false);
    assert.equal(evaluate(base({ condition: { field: 'diag.WiFi.Radio.{i}.X_VENDOR_DriverErrors', op: 'gte', value: 4, agg: 'sum' } }), c).matched, true);
    assert.equal(evaluate(base({ condition: { field: 'diag.WiFi.Radio.{i}.X_VENDOR_DriverErrors', op: 'eq', value: 2, agg: 'count' } }), c).matched, true);
    // No data is not a match; "missing" is.
    const none = evaluate(base({ condition: { field: 'diag.WiFi.X', op: 'gt', value: 0 } }), c);
    assert.equal(none.matched, false);
    assert.equal(none.facts[0].note, 'no data');
    assert.equal(evaluate(base({ condition: { field: 'diag.WiFi.X', op: 'missing' } }), c).matched, true);
    // Booleans as devices send them.
    const b = ctx({ params: { 'Device.ManagementServer.PeriodicInformEnable': '0' } });
    assert.equal(evaluate(base({ condition: { field: 'registry.param.ManagementServer.PeriodicInformEnable', op: 'eq', value: false } }), b).matched, true);
    // all / any / not, every test recorded.
    const cond = evaluate(base({ condition: { all: [{ field: 'registry.online', op: 'eq', value: true }, { not: { field: 'registry.offline', op: 'eq', value: true } }] } }), c);
    assert.equal(cond.matched, true);
    assert.equal(cond.facts.length, 2);
    assert.match(cond.facts[1].test, /^not \(/);
  });

  it('resolves variables: defaults, then the model, then device tags', () => {
    const rule = base({
      variables: { defaults: { minVersion: '1.0' }, byModel: [{ match: { productClass: 'R1' }, values: { minVersion: '2.0', firmwareFile: 'fw.bin' } }] },
      condition: { field: 'registry.softwareVersion', op: 'versionLt', value: { var: 'minVersion' } },
    });
    const reg = ctx({ registry: { softwareVersion: '1.5' } as never }).registry;
    assert.deepEqual(variablesFor(rule, reg), { minVersion: '2.0', firmwareFile: 'fw.bin' });
    assert.deepEqual(variablesFor(rule, { ...reg, productClass: 'R2' }), { minVersion: '1.0' });
    assert.equal(variablesFor(rule, { ...reg, tags: ['var:minVersion:3.1'] }).minVersion, '3.1');
    const c = ctx({ registry: { softwareVersion: '1.5' } as never });
    c.vars = variablesFor(rule, c.registry);
    assert.equal(evaluate(rule, c).matched, true);
    c.vars = {};
    const e = evaluate(rule, c);
    assert.equal(e.matched, false);
    assert.match(e.facts[0].note!, /minVersion is not set/);
  });

  it('expands templates and says which one is missing', () => {
    const t = { root: 'Device.', vars: { f: 'fw.bin' }, match: { name: 'Device.WiFi.AccessPoint.2.AssociatedDevice.3.SignalStrength', value: '-80' }, config: {} };
    assert.deepEqual(expand({ a: ['{{root}}X', '{{vars.f}}', '{{match.i1}}-{{match.i2}}', '{{match.object}}'] }, t), {
      a: ['Device.X', 'fw.bin', '2-3', 'Device.WiFi.AccessPoint.2.AssociatedDevice.3.'],
    });
    assert.throws(() => expand('{{config.logUploadUrl}}', t), TemplateError);
    assert.throws(() => expand('{{vars.nope}}', t), /nope is not set/);
    assert.throws(() => expand('{{match.i3}}', { ...t, match: { name: 'Device.A.1.B', value: '' } }), /no such instance/);
    assert.match(explain('R', 2, [{ test: 'x > 1', field: ['x'], op: 'gt', threshold: 1, values: [{ name: 'x', value: '5' }], matched: true }], 'reboot'), /Rule "R" \(revision 2\) fired because x > 1 \(threshold 1\): x=5\. Decision: reboot\./);
  });
});

describe('rules: time zones and maintenance windows (unit)', () => {
  it('parses POSIX TZ strings with their DST rules', () => {
    const cet = parsePosixTz('CET-1CEST,M3.5.0,M10.5.0/3')!;
    assert.equal(cet.std, 60);
    assert.equal(cet.dst?.offset, 120);
    const z = { kind: 'posix' as const, tz: cet, text: 'CET' };
    assert.equal(offsetAt(z, Date.parse('2025-01-15T12:00:00Z')), 60);
    assert.equal(offsetAt(z, Date.parse('2025-07-15T12:00:00Z')), 120);
    // Last Sunday of March 2025 = 30 March, 01:00 UTC.
    assert.equal(offsetAt(z, Date.parse('2025-03-30T00:59:00Z')), 60);
    assert.equal(offsetAt(z, Date.parse('2025-03-30T01:00:00Z')), 120);
    assert.equal(parsePosixTz('UTC0')?.std, 0);
    assert.equal(parsePosixTz('<+03>-3')?.std, 180);
    assert.equal(parsePosixTz('EST5EDT,M3.2.0,M11.1.0')?.std, -300);
    // The same instant through the IANA database.
    assert.equal(offsetAt({ kind: 'iana', name: 'Europe/Berlin' }, Date.parse('2025-07-15T12:00:00Z')), 120);
    assert.equal(zoneFrom('+05:30')?.kind, 'fixed');
    assert.equal(zoneFrom('Europe/Paris')?.kind, 'iana');
    assert.equal(zoneFrom('nonsense!'), undefined);
  });

  it('knows whether a window is open in the device\'s local time, and when it opens next', () => {
    const berlin = zoneFrom('CET-1CEST,M3.5.0,M10.5.0/3')!;
    const w = { start: '02:00', end: '05:00' };
    // 01:30 UTC in July = 03:30 in Berlin: open until 05:00 local = 03:00 UTC.
    const open = windowAt(new Date('2025-07-15T01:30:00Z'), w, berlin);
    assert.equal(open.open, true);
    assert.equal(open.end.toISOString(), '2025-07-15T03:00:00.000Z');
    // 12:00 UTC: next opening 02:00 local = 00:00 UTC next day.
    const closed = windowAt(new Date('2025-07-15T12:00:00Z'), w, berlin);
    assert.equal(closed.open, false);
    assert.equal(closed.start.toISOString(), '2025-07-16T00:00:00.000Z');
    // Over midnight.
    const night = windowAt(new Date('2025-01-15T23:30:00Z'), { start: '23:00', end: '01:00' }, zoneFrom('UTC')!);
    assert.equal(night.open, true);
    assert.equal(night.end.toISOString(), '2025-01-16T01:00:00.000Z');
  });

  it('takes the device\'s zone from a tag, its own setting, then the rule', () => {
    const params = new Map([['Device.Time.LocalTimeZone', { value: 'CET-1CEST,M3.5.0,M10.5.0/3' }]]);
    assert.match(deviceZone(['tz:America/New_York'], params, 'UTC').source, /tag/);
    assert.match(deviceZone([], params, 'UTC').source, /device setting Device.Time.LocalTimeZone/);
    assert.match(deviceZone([], new Map(), 'Asia/Tokyo').source, /rule's time zone Asia\/Tokyo/);
    assert.match(deviceZone([], new Map(), undefined).source, /^UTC/);
  });
});

describe('rules: statistics (unit)', () => {
  it('derives per-day and weekly connection statistics from daily rollups, disconnects as the reports count them', () => {
    const d = (day: string, x: Partial<DailyDoc>) => ({ _id: day, device: 'D', day, sessions: 0, connectedMs: 0, completed: 0, faulted: 0, timedOut: 0, aborted: 0, boots: 0, requestedBoots: 0, firstContact: new Date(), lastContact: new Date(), ...x }) as DailyDoc;
    const now = new Date('2025-01-10T12:00:00Z');
    const facts = { intervalS: 3600, registeredAt: Date.parse('2025-01-01T00:00:00Z') };
    const up = (iso: string) => Date.parse(iso);
    const s = connStats(
      [
        d('2025-01-05', { up: [up('2025-01-05T10:00:00Z')] }),
        d('2025-01-09', { boots: 4, requestedBoots: 1, up: [up('2025-01-09T08:00:00Z'), up('2025-01-09T20:00:00Z')] }),
        d('2025-01-10', { boots: 1, up: [up('2025-01-10T01:00:00Z'), up('2025-01-10T01:01:00Z'), up('2025-01-10T09:00:00Z')] }),
      ],
      now,
      facts,
    );
    assert.equal(s.today.unexpectedBoots, 1);
    assert.equal(s.perDay.unexpectedBoots, 3);
    assert.equal(s.today.disconnects, 2, 'two reconnections today (values within 2 minutes are one)');
    assert.equal(s.perDay.disconnects, 3, 'the last 24 h');
    assert.equal(s.week.disconnects, 5);
  });

  it('merges snapshots newest first and counts WAN reconnections from uptimes', () => {
    const now = new Date('2025-01-10T12:00:00Z');
    const snap = (at: string, values: [string, string][]): SnapshotDoc => ({
      _id: at, device: 'ps', region: 'r', at: new Date(at), updatedAt: new Date(at), trigger: 't', categories: [], analysable: true,
      values: values.map(([p, v]) => ({ p, c: 'stability', t: 'xsd:unsignedInt', v })),
    });
    const up = 'Device.DeviceInfo.UpTime';
    const wan = 'Device.IP.Interface.2.LastChange';
    const list = [
      snap('2025-01-10T11:00:00Z', [[up, '36000'], [wan, '600']]), // up since 10:50
      snap('2025-01-10T10:00:00Z', [[up, '32400'], [wan, '1200']]), // up since 09:40
      snap('2025-01-10T09:00:00Z', [[up, '28800'], [wan, '28800']]), // since boot: not a reconnection
      snap('2025-01-10T08:00:00Z', [[up, '25200'], [wan, '25200']]),
    ];
    assert.equal(wanReconnects(list, now), 2);
    assert.equal(mergeSnapshots(list).get(wan)?.value, '600');
  });
});
