// Connection reports (issue 6) against a hand-computed history (test/support/report-history.ts):
// sessions crossing midnight, time zones (Berlin with its DST change, Kolkata +05:30), a session
// still open, a timed-out session, missed informs, a device that reports its WAN uptime; the
// HTTP API (CSV equals JSON) and a real CWMP session flowing into the rollups.
import assert from 'node:assert/strict';
import { startApiAcs, type ApiClient } from '../support/api-client';
import type { TestAcs } from '../support/acs';
import { A, B, NOW, finalizeHistory, seedHistory } from '../support/report-history';
import { resolveRange } from '../../src/reports/service';
import { parseCsv } from '../../src/reports/csv';
import { binValue, durationBin } from '../../src/reports/hist';
import { TestCpe } from '../support/cpe';

const range = (from: string, to: string, tz = 'UTC') => resolveRange({ from, to, tz });
const pick = <T extends object>(rows: T[], keys: (keyof T)[]) => rows.map((r) => Object.fromEntries(keys.map((k) => [k, r[k]])));
const bin = (ms: number) => Math.round(binValue(durationBin(ms)));

describe('connection reports (hand-computed history)', function () {
  let acs: TestAcs;
  let api: ApiClient;

  before(async function () {
    ({ acs, api } = await startApiAcs());
    await seedHistory(acs);
    await finalizeHistory(acs);
  });
  after(async () => acs?.stop());

  it('rolls up per UTC day with 15-minute buckets (one document per device-day, fleet days merged)', async () => {
    const docs = await acs.rollups.forDevice(A, '2024-03-01', '2024-04-30');
    assert.deepEqual(
      docs.map((d) => [d.day, d.sessions, d.connectedMs, d.completed ?? 0, d.faulted ?? 0, d.timedOut ?? 0, d.boots ?? 0, d.requestedBoots ?? 0, d.periodic ?? 0]),
      [
        ['2024-03-29', 2, 15_000, 2, 0, 0, 0, 0, 2],
        ['2024-03-30', 2, 34_000, 2, 0, 0, 1, 0, 1],
        ['2024-03-31', 2, 1_830_000, 0, 1, 1, 1, 1, 1],
      ],
    );
    const d30 = docs[1];
    // s2's 20 s after midnight in bucket 0; s3 at 12:00 → bucket 48; s4 at 23:30 → bucket 94 (boot, not periodic).
    assert.deepEqual(d30.qc, { '0': 20_000, '48': 10_000, '94': 4_000 });
    assert.deepEqual(d30.qs, { '48': 1, '94': 1 });
    assert.deepEqual(d30.qb, { '94': 1 });
    assert.deepEqual(d30.qn, { '94': 1 });
    assert.equal(d30.firstContact.toISOString(), '2024-03-30T00:00:00.000Z');
    assert.equal(d30.lastContact.toISOString(), '2024-03-30T23:30:04.000Z');
    // s6 spans 21:45–22:15: two buckets.
    assert.deepEqual(docs[2].qc, { '6': 30_000, '87': 900_000, '88': 900_000 });
    assert.equal(docs[0].g, '00AA11-Router-1%2E0');
    const b = (await acs.rollups.forDevice(B, '2024-03-30', '2024-03-30'))[0];
    assert.deepEqual([...b.up!].sort(), [Date.parse('2024-03-28T00:00Z'), Date.parse('2024-03-30T10:30Z'), Date.parse('2024-03-30T12:45Z')].sort());
    const [fleet30] = await acs.rollups.fleetDays(['2024-03-30']);
    assert.equal(fleet30.sessions, 6);
    assert.equal(fleet30.connectedMs, 42_000);
    assert.equal(fleet30.g!['00AA11-Router-2%2E0'].sessions, 4);
    assert.deepEqual(fleet30.hq!['48'], { [String(durationBin(10_000))]: 1, [String(durationBin(2000))]: 1 });
  });

  it('device daily view in UTC equals the UTC rollups', async () => {
    const out = await acs.reports.deviceDaily(A, range('2024-03-29', '2024-03-31'), NOW);
    assert.equal(out.intervalS, 43_200);
    assert.equal(out.intervalSource, 'device');
    assert.deepEqual(pick(out.items, ['date', 'sessions', 'connectedMs', 'boots', 'timedOut', 'faulted']), [
      { date: '2024-03-29', sessions: 2, connectedMs: 15_000, boots: 0, timedOut: 0, faulted: 0 },
      { date: '2024-03-30', sessions: 2, connectedMs: 34_000, boots: 1, timedOut: 0, faulted: 0 },
      { date: '2024-03-31', sessions: 2, connectedMs: 1_830_000, boots: 1, timedOut: 1, faulted: 1 },
    ]);
  });

  it('device daily view in Europe/Berlin across the DST change (23-hour day), with disconnects, availability and contacts', async () => {
    const out = await acs.reports.deviceDaily(A, range('2024-03-29', '2024-04-01', 'Europe/Berlin'), NOW);
    const rows = out.items;
    assert.deepEqual(
      rows.map((r) => [r.date, r.start, r.hours]),
      [
        ['2024-03-29', '2024-03-28T23:00:00.000Z', 24],
        ['2024-03-30', '2024-03-29T23:00:00.000Z', 24],
        ['2024-03-31', '2024-03-30T23:00:00.000Z', 23],
        ['2024-04-01', '2024-03-31T22:00:00.000Z', 24],
      ],
    );
    assert.deepEqual(pick(rows, ['sessions', 'connectedMs', 'completed', 'timedOut', 'faulted', 'boots', 'requestedBoots', 'periodicInforms']), [
      { sessions: 1, connectedMs: 5_000, completed: 1, timedOut: 0, faulted: 0, boots: 0, requestedBoots: 0, periodicInforms: 1 },
      // s2 (23:59:50Z on the 29th is 00:59:50 local on the 30th) and s3.
      { sessions: 2, connectedMs: 40_000, completed: 2, timedOut: 0, faulted: 0, boots: 0, requestedBoots: 0, periodicInforms: 2 },
      // s4 (00:30 local), s5 (timed out), s6's first 15 minutes (21:45–22:00Z = 23:45–24:00 CEST).
      { sessions: 3, connectedMs: 934_000, completed: 1, timedOut: 1, faulted: 1, boots: 2, requestedBoots: 1, periodicInforms: 1 },
      // s6's other 15 minutes; s7 is still open (counted when it closes).
      { sessions: 0, connectedMs: 900_000, completed: 0, timedOut: 0, faulted: 0, boots: 0, requestedBoots: 0, periodicInforms: 0 },
    ]);
    // 31st: s4 is an unrequested boot (1) and 20 h of silence after s5 missed informs (1 gap);
    // s6's requested reboot is a reboot, not a disconnect.
    assert.deepEqual(pick(rows, ['disconnects', 'disconnectSource', 'gaps', 'unexpectedBoots']), [
      { disconnects: 0, disconnectSource: 'inferred', gaps: 0, unexpectedBoots: 0 },
      { disconnects: 0, disconnectSource: 'inferred', gaps: 0, unexpectedBoots: 0 },
      { disconnects: 2, disconnectSource: 'inferred', gaps: 1, unexpectedBoots: 1 },
      { disconnects: 0, disconnectSource: 'inferred', gaps: 0, unexpectedBoots: 0 },
    ]);
    // Expected informs: observed time ÷ 12 h (registered at 00:00Z on the 29th; now = 06:00:30Z on 04-01).
    assert.deepEqual(pick(rows, ['expectedInforms', 'missedInforms', 'availability']), [
      { expectedInforms: 1.92, missedInforms: 0, availability: 0.5217 },
      { expectedInforms: 2, missedInforms: 0, availability: 1 },
      { expectedInforms: 1.92, missedInforms: 0, availability: 0.5217 },
      { expectedInforms: 0.67, missedInforms: 0, availability: null },
    ]);
    assert.deepEqual(pick(rows, ['firstContact', 'lastContact', 'contactPrecision']), [
      { firstContact: '2024-03-29T10:00:00.000Z', lastContact: '2024-03-29T10:15:00.000Z', contactPrecision: '15min' },
      { firstContact: '2024-03-29T23:45:00.000Z', lastContact: '2024-03-30T12:15:00.000Z', contactPrecision: '15min' },
      { firstContact: '2024-03-30T23:30:00.000Z', lastContact: '2024-03-31T22:00:00.000Z', contactPrecision: '15min' },
      { firstContact: '2024-03-31T22:00:00.000Z', lastContact: '2024-03-31T22:15:00.000Z', contactPrecision: '15min' },
    ]);
    const utc = await acs.reports.deviceDaily(A, range('2024-03-29', '2024-03-29'), NOW);
    assert.equal(utc.items[0].firstContact, '2024-03-29T10:00:00.000Z');
  });

  it('a half-hour zone (Asia/Kolkata) sums the right quarter-hours', async () => {
    const out = await acs.reports.deviceDaily(A, range('2024-03-31', '2024-03-31', 'Asia/Kolkata'), NOW);
    assert.equal(out.items[0].start, '2024-03-30T18:30:00.000Z');
    assert.equal(out.items[0].sessions, 2); // s4, s5 (s3 at 12:00Z is 17:30 on the 30th)
    assert.equal(out.items[0].connectedMs, 34_000);
  });

  it('disconnects from the device\'s own uptime when it reports one', async () => {
    const out = await acs.reports.deviceDaily(B, range('2024-03-30', '2024-03-31'), NOW);
    assert.deepEqual(pick(out.items, ['date', 'sessions', 'disconnects', 'disconnectSource']), [
      { date: '2024-03-30', sessions: 4, disconnects: 2, disconnectSource: 'uptime' },
      { date: '2024-03-31', sessions: 0, disconnects: 0, disconnectSource: 'uptime' },
    ]);
  });

  it('timeline: sessions with local times, the open and the timed-out one, the gap and the reboots', async () => {
    const out = await acs.reports.timeline(A, range('2024-03-29', '2024-04-01', 'Europe/Berlin'), 2000, NOW);
    assert.equal(out.items.length, 7);
    assert.deepEqual(
      out.items.map((i) => [i.connectedAtLocal, i.status, i.outcome, i.durationMs]),
      [
        ['2024-03-29T11:00:00+01:00', 'closed', 'completed', 5_000],
        ['2024-03-30T00:59:50+01:00', 'closed', 'completed', 30_000],
        ['2024-03-30T13:00:00+01:00', 'closed', 'completed', 10_000],
        ['2024-03-31T00:30:00+01:00', 'closed', 'completed', 4_000],
        ['2024-03-31T03:30:00+02:00', 'closed', 'timeout', 30_000],
        ['2024-03-31T23:45:00+02:00', 'closed', 'fault', 1_800_000],
        ['2024-04-01T08:00:00+02:00', 'open', null, null],
      ],
    );
    assert.equal(out.items[6].disconnectedAt, null);
    assert.deepEqual(out.gaps, [{ from: '2024-03-31T01:30:30.000Z', to: '2024-03-31T21:45:00.000Z', durationMs: 72_870_000, missedInforms: 1, ongoing: false }]);
    assert.equal(out.items[5].gapBeforeMs, 72_870_000);
    assert.deepEqual(
      out.reboots.map((r) => [r.at, r.requested]),
      [
        ['2024-03-30T23:30:00.000Z', false],
        ['2024-03-31T21:45:00.000Z', true],
      ],
    );
  });

  it('fleet daily from the fleet rollups and their finalisation', async () => {
    const out = await acs.reports.fleetDaily({}, range('2024-03-29', '2024-03-31'), NOW);
    assert.equal(out.source, 'fleet-rollups');
    assert.deepEqual(pick(out.items, ['date', 'sessions', 'connectedMs', 'boots', 'activeDevices', 'disconnects', 'disconnectsFromUptime', 'disconnectsInferred', 'final']), [
      { date: '2024-03-29', sessions: 2, connectedMs: 15_000, boots: 0, activeDevices: 1, disconnects: 0, disconnectsFromUptime: 0, disconnectsInferred: 0, final: true },
      { date: '2024-03-30', sessions: 6, connectedMs: 42_000, boots: 1, activeDevices: 2, disconnects: 3, disconnectsFromUptime: 2, disconnectsInferred: 1, final: true },
      { date: '2024-03-31', sessions: 2, connectedMs: 1_830_000, boots: 1, activeDevices: 1, disconnects: 1, disconnectsFromUptime: 0, disconnectsInferred: 1, final: true },
    ]);
    const d29 = out.items[0];
    assert.equal(d29.sessionP50Ms, bin(5_000));
    assert.equal(d29.sessionP95Ms, bin(30_000));
    assert.equal(d29.connectedPerDeviceP50Ms, bin(15_000));
    // 30th: A was connected 34 s, B 8 s → median is B's (rank 1 of 2), p95 A's.
    assert.equal(out.items[1].connectedPerDeviceP50Ms, bin(8_000));
    assert.equal(out.items[1].connectedPerDeviceP95Ms, bin(34_000));
    // Availability: A expected 2 (12 h), B 24 (1 h) on the 30th; periodic informs arrived: A 1, B 4.
    assert.equal(out.items[1].expectedInforms, 26);
    assert.equal(out.items[1].periodicInforms, 5);

    // Berlin: the fleet buckets give the same day totals as each device's own.
    const berlin = await acs.reports.fleetDaily({}, range('2024-03-31', '2024-03-31', 'Europe/Berlin'), NOW);
    assert.equal(berlin.items[0].hours, 23);
    assert.equal(berlin.items[0].sessions, 3);
    assert.equal(berlin.items[0].connectedMs, 934_000);
    assert.equal(berlin.items[0].disconnects, 2);
  });

  it('a filtered fleet (device-list filters) reads device rollups and agrees with the fleet rollups', async () => {
    const all = await acs.reports.fleetDaily({}, range('2024-03-29', '2024-03-31'), NOW);
    const filtered = await acs.reports.fleetDaily({ productClass: 'Router' }, range('2024-03-29', '2024-03-31'), NOW);
    assert.equal(filtered.source, 'device-rollups');
    assert.equal(filtered.devices, 2);
    const keys = ['sessions', 'connectedMs', 'boots', 'activeDevices', 'disconnects', 'disconnectsFromUptime', 'periodicInforms', 'expectedInforms'] as const;
    assert.deepEqual(pick(filtered.items, [...keys]), pick(all.items, [...keys]));
    const onlyB = await acs.reports.fleetDaily({ id: B }, range('2024-03-30', '2024-03-30'), NOW);
    assert.equal(onlyB.items[0].sessions, 4);
    assert.equal(onlyB.items[0].disconnects, 2);
  });

  it('devices with the most disconnects, and the breakdown by model and version', async () => {
    const top = await acs.reports.topDisconnects({}, range('2024-03-29', '2024-03-31'), 10, NOW);
    assert.equal(top.final, true);
    assert.deepEqual(
      top.items.map((i) => [i.rank, i.device, i.disconnects, i.softwareVersion]),
      [
        [1, A, 2, '1.0'],
        [2, B, 2, '2.0'],
      ],
    );
    const topF = await acs.reports.topDisconnects({ oui: '00AA11' }, range('2024-03-29', '2024-03-31'), 10, NOW);
    assert.deepEqual(topF.items.map((i) => [i.device, i.disconnects]), top.items.map((i) => [i.device, i.disconnects]));
    const br = await acs.reports.breakdown({}, range('2024-03-29', '2024-03-31'), NOW);
    assert.deepEqual(pick(br.items, ['productClass', 'softwareVersion', 'deviceDays', 'sessions', 'disconnects']), [
      { productClass: 'Router', softwareVersion: '1.0', deviceDays: 3, sessions: 6, disconnects: 2 },
      { productClass: 'Router', softwareVersion: '2.0', deviceDays: 1, sessions: 4, disconnects: 2 },
    ]);
  });

  describe('HTTP API', () => {
    const q = 'from=2024-03-29&to=2024-04-01&tz=Europe%2FBerlin';
    const tables: [string, string][] = [
      ['device timeline', `/api/v1/reports/devices/${A}/timeline?${q}`],
      ['device daily', `/api/v1/reports/devices/${A}/daily?${q}`],
      ['devices daily', `/api/v1/reports/devices?${q}&productClass=Router`],
      ['fleet daily', `/api/v1/reports/fleet/daily?${q}`],
      ['filtered fleet daily', `/api/v1/reports/fleet/daily?${q}&oui=00AA11`],
      ['top disconnects', `/api/v1/reports/fleet/top-disconnects?${q}`],
      ['breakdown', `/api/v1/reports/fleet/breakdown?${q}`],
      ['offline', `/api/v1/reports/fleet/offline?limit=1000`],
    ];
    for (const [name, path] of tables) {
      it(`${name}: the CSV has the JSON items, column for column`, async () => {
        const json = await api.get(path);
        assert.equal(json.status, 200, json.text);
        assert.ok(json.body.items.length > 0, `${name} has rows`);
        const csv = await api.get(path + '&format=csv');
        assert.equal(csv.status, 200, csv.text);
        assert.match(csv.headers.get('content-type') ?? '', /^text\/csv/);
        assert.match(csv.headers.get('content-disposition') ?? '', /^attachment; filename=".+\.csv"$/);
        const [header, ...rows] = parseCsv(csv.text);
        assert.deepEqual(header, Object.keys(json.body.items[0]));
        const asCsv = (v: unknown) => (v === null || v === undefined ? '' : Array.isArray(v) ? v.join(';') : String(v));
        assert.deepEqual(
          rows,
          json.body.items.map((it: Record<string, unknown>) => header.map((h) => asCsv(it[h]))),
        );
      });
    }

    it('validates the range and the zone, and needs a token', async () => {
      const bad = await api.get(`/api/v1/reports/fleet/daily?from=2024-03-29&to=2024-03-31&tz=Mars%2FOlympus`);
      assert.equal(bad.status, 400);
      assert.match(bad.body.error.message, /unknown time zone/);
      const back = await api.get(`/api/v1/reports/fleet/daily?from=2024-03-31&to=2024-03-29`);
      assert.equal(back.status, 400);
      const long = await api.get(`/api/v1/reports/fleet/daily?from=2020-01-01&to=2024-03-29`);
      assert.equal(long.status, 400);
      assert.equal((await api.get(`/api/v1/reports/devices/nope/daily?${q}`)).status, 404);
      assert.equal((await api.as(undefined).get(`/api/v1/reports/fleet/daily?${q}`)).status, 401);
    });

    it('a fleet filter over too many devices is refused with an explanation', async () => {
      const saved = acs.reports.maxFilteredDevices;
      (acs.reports as { maxFilteredDevices: number }).maxFilteredDevices = 1;
      try {
        const r = await api.get(`/api/v1/reports/fleet/daily?${q}&oui=00AA11`);
        assert.equal(r.status, 422);
        assert.match(r.body.error.message, /matches 2 devices/);
      } finally {
        (acs.reports as { maxFilteredDevices: number }).maxFilteredDevices = saved;
      }
    });

    it('serves the report page and its assets locally with a strict CSP', async () => {
      const page = await api.as(undefined).get('/reports');
      assert.equal(page.status, 200);
      assert.match(page.text, /<script src="\/reports\/assets\/uPlot\.iife\.min\.js">/);
      assert.match(page.headers.get('content-security-policy') ?? '', /script-src 'self'/);
      const lib = await api.as(undefined).get('/reports/assets/uPlot.iife.min.js');
      assert.equal(lib.status, 200);
      assert.match(lib.text, /uPlot/);
      assert.equal((await api.as(undefined).get('/reports/assets/..%2Fpackage.json')).status, 400);
    });
  });

  it('a real CWMP session lands in the rollups with its software version and bucket', async () => {
    const cpe = new TestCpe({
      url: acs.url,
      deviceId: { manufacturer: 'Acme', oui: '00BB22', productClass: 'Box', serialNumber: `R${Date.now()}` },
      dataModel: 'tr181',
    });
    const before = Date.now();
    const r = await cpe.session({ events: [{ eventCode: '2 PERIODIC', commandKey: '' }] });
    assert.ok(r.ok);
    await acs.flush();
    const today = new Date(before).toISOString().slice(0, 10);
    const [doc] = await acs.rollups.forDevice(cpe.id, today, today);
    assert.equal(doc.sessions, 1);
    assert.equal(doc.periodic, 1);
    assert.ok(doc.g?.startsWith('00BB22-Box-'));
    const daily = await api.get(`/api/v1/reports/devices/${encodeURIComponent(cpe.id)}/daily?from=${today}&to=${today}`);
    assert.equal(daily.status, 200, daily.text);
    assert.equal(daily.body.items[0].sessions, 1);
    const tl = await api.get(`/api/v1/reports/devices/${encodeURIComponent(cpe.id)}/timeline?from=${today}&to=${today}`);
    assert.equal(tl.body.items.length, 1);
    assert.equal(tl.body.items[0].status, 'closed');
  });
});
