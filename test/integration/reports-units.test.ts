// Connection reports (issue 6): the pure parts — zone days, histograms, CSV, episode inference.
// No services (kept with the report tests so they run together).
import assert from 'node:assert/strict';
import { zoneDays, localIso, isTimeZone, bucketOf } from '../../src/reports/time';
import { binValue, durationBin, quantile, exactQuantile } from '../../src/reports/hist';
import { csvLine, parseCsv } from '../../src/reports/csv';
import { buildSeries, inferredEpisodes, uptimeEpisodes } from '../../src/reports/analysis';
import { sessionFacts } from '../../src/reports/facts';
import { groupKey, parseGroupKey, type DailyDoc } from '../../src/rollups';

describe('connection reports: zone days', () => {
  const day = (date: string, tz: string) => {
    const [w] = zoneDays(date, date, tz);
    return [new Date(w.start).toISOString(), (w.end - w.start) / 3_600_000];
  };
  it('DST days last 23 and 25 hours', () => {
    assert.deepEqual(day('2024-03-31', 'Europe/Berlin'), ['2024-03-30T23:00:00.000Z', 23]);
    assert.deepEqual(day('2024-10-27', 'Europe/Berlin'), ['2024-10-26T22:00:00.000Z', 25]);
    assert.deepEqual(day('2024-03-10', 'America/New_York'), ['2024-03-10T05:00:00.000Z', 23]);
  });
  it('quarter-hour offsets and half-hour DST', () => {
    assert.deepEqual(day('2024-01-01', 'Asia/Kathmandu'), ['2023-12-31T18:15:00.000Z', 24]);
    assert.deepEqual(day('2024-01-01', 'Asia/Kolkata'), ['2023-12-31T18:30:00.000Z', 24]);
    assert.deepEqual(day('2024-04-07', 'Australia/Lord_Howe'), ['2024-04-06T13:00:00.000Z', 24.5]);
    assert.deepEqual(day('2024-04-07', 'Pacific/Chatham'), ['2024-04-06T10:15:00.000Z', 25]);
  });
  it('a day whose midnight does not exist starts at its first instant', () => {
    // Chile moves 00:00 → 01:00.
    assert.deepEqual(day('2024-09-08', 'America/Santiago'), ['2024-09-08T04:00:00.000Z', 23]);
    assert.equal(localIso(Date.parse('2024-09-08T04:00:00Z'), 'America/Santiago'), '2024-09-08T01:00:00-03:00');
  });
  it('consecutive days tile time without overlap', () => {
    const days = zoneDays('2024-03-25', '2024-04-05', 'Europe/Berlin');
    for (let i = 1; i < days.length; i++) assert.equal(days[i].start, days[i - 1].end);
    for (const d of days) assert.equal(d.start % 900_000, 0);
  });
  it('knows zone names', () => {
    assert.ok(isTimeZone('Europe/Berlin'));
    assert.ok(!isTimeZone('Mars/Olympus'));
    assert.equal(bucketOf(Date.parse('2024-01-01T23:59:59Z')), 95);
  });
});

describe('connection reports: histograms, CSV, facts', () => {
  it('log-scaled bins are within ±9 %', () => {
    for (const ms of [1000, 1500, 4_321, 60_000, 3_600_000, 86_400_000]) {
      const v = binValue(durationBin(ms));
      assert.ok(Math.abs(v - ms) / ms < 0.095, `${ms} → ${v}`);
    }
    assert.equal(durationBin(0), 0);
    assert.equal(durationBin(999), 0);
  });
  it('quantiles by nearest rank', () => {
    const h: Record<string, number> = {};
    for (const ms of [1000, 2000, 3000, 4000, 100_000]) h[durationBin(ms)] = (h[durationBin(ms)] ?? 0) + 1;
    assert.equal(quantile(h, 0.5), Math.round(binValue(durationBin(3000))));
    assert.equal(quantile(h, 0.95), Math.round(binValue(durationBin(100_000))));
    assert.equal(quantile({}, 0.5), null);
    assert.equal(exactQuantile([5, 1, 3, 2, 4], 0.5), 3);
  });
  it('CSV quotes what needs it and round-trips', () => {
    const line = csvLine(['a,b', 'say "hi"', null, 3.5, ['x', 'y'], '=cmd()', 'multi\nline']);
    assert.equal(line, '"a,b","say ""hi""",,3.5,x;y,\'=cmd(),"multi\nline"\r\n');
    assert.deepEqual(parseCsv(line), [['a,b', 'say "hi"', '', '3.5', 'x;y', "'=cmd()", 'multi\nline']]);
  });
  it('session facts: software version and WAN uptime from the Inform', () => {
    const now = Date.parse('2024-05-01T12:00:00Z');
    const f = sessionFacts(
      [
        { name: 'InternetGatewayDevice.DeviceInfo.SoftwareVersion', value: 'V1.2', type: 'xsd:string' },
        { name: 'InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANPPPConnection.1.Uptime', value: '3600', type: 'xsd:unsignedInt' },
        { name: 'InternetGatewayDevice.WANDevice.1.WANConnectionDevice.2.WANIPConnection.1.Uptime', value: '0', type: 'xsd:unsignedInt' },
      ],
      now,
    );
    assert.deepEqual(f, { softwareVersion: 'V1.2', wanUpAt: now - 3_600_000 });
    assert.deepEqual(sessionFacts([{ name: 'Device.IP.Interface.1.LastChange', value: '60', type: 'xsd:unsignedInt' }], now), { wanUpAt: now - 60_000 });
  });
  it('model and version keys are document keys and decode back', () => {
    const k = groupKey('00D09E-HG8245%2DH-SN1', 'V3.1$b');
    assert.ok(!/[.$]/.test(k));
    assert.deepEqual(parseGroupKey(k), { oui: '00D09E', productClass: 'HG8245-H', softwareVersion: 'V3.1$b' });
  });
});

describe('connection reports: disconnect inference', () => {
  const docOf = (day: string, qs: Record<string, number>, extra: Partial<DailyDoc> = {}): DailyDoc =>
    ({ _id: `d|${day}`, device: 'd', day, sessions: 0, connectedMs: 0, completed: 0, faulted: 0, timedOut: 0, aborted: 0, boots: 0, requestedBoots: 0, firstContact: new Date(), lastContact: new Date(), qs, qc: qs, ...extra }) as DailyDoc;
  const every15 = (from: number, to: number, skip: number[] = []) => {
    const m: Record<string, number> = {};
    for (let b = from; b < to; b++) if (!skip.includes(b)) m[b] = 1;
    return m;
  };
  const start = Date.parse('2024-06-01T00:00:00Z');

  it('a 15-minute device: one missed inform is jitter, two in a row are a gap', () => {
    const s = buildSeries([docOf('2024-06-01', every15(0, 96, [10, 40, 41, 42]))], '2024-06-01', '2024-06-01');
    const e = inferredEpisodes(s, { intervalS: 900, registeredAt: 0 }, start + 86_400_000);
    assert.deepEqual(
      e.map((x) => [x.kind, (x.at - start) / 900_000, x.missed]),
      [['gap', 40, 3]],
    );
  });
  it('an unrequested boot is a disconnect unless it ends a gap; a requested one never', () => {
    const s = buildSeries(
      [docOf('2024-06-01', every15(0, 96, [50, 51]), { qb: { '20': 1, '30': 1, '52': 1 }, qr: { '30': 1 } })],
      '2024-06-01',
      '2024-06-01',
    );
    const e = inferredEpisodes(s, { intervalS: 900, registeredAt: 0 }, start + 86_400_000);
    assert.deepEqual(
      e.map((x) => [x.kind, (x.at - start) / 900_000]),
      [
        ['boot', 20],
        ['gap', 50],
      ],
    );
  });
  it('silence still going on is one gap; silence before the first session or registration is none', () => {
    const s = buildSeries([docOf('2024-06-01', every15(20, 60))], '2024-06-01', '2024-06-01');
    const e = inferredEpisodes(s, { intervalS: 900, registeredAt: start }, start + 80 * 900_000);
    assert.deepEqual(
      e.map((x) => [x.kind, (x.at - start) / 900_000, x.until]),
      [['gap', 60, null]],
    );
  });
  it('uptime reports: one reconnection per distinct up-since (2 minutes apart or more)', () => {
    const up = [start + 60_000, start + 120_000, start + 3_600_000];
    const e = uptimeEpisodes([docOf('2024-06-01', {}, { up })]);
    assert.deepEqual(
      e.map((x) => x.at),
      [start + 60_000, start + 3_600_000],
    );
  });
});
