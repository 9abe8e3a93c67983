// Randomised run (issue 4): many devices, many sessions, consent flipped on the devices (between
// sessions, as an owner toggling the router's setting) and through the API (between sessions
// and in the middle of sessions). Invariants, checked on every request a device receives:
// no diagnostic read (GetParameterValues / GetParameterNames other than the consent read)
// ever reaches a device that was not joined at that moment, and every session of a device that
// stayed joined collects. Reproduce a failure with TEST_SEED=<seed printed on failure>.
import assert from 'node:assert/strict';
import { ApiClient, enc, startApiAcs } from '../support/api-client';
import type { TestAcs } from '../support/acs';
import type { TestCpe } from '../support/cpe';
import type { EventStruct } from '../../cwmp/types';
import { BOOTSTRAP, consentParam, isDiagnosticRead, programCpe, staticProfile } from '../support/program';
import { rng } from '../../tools/sim/random';

const pickOf = <T>(r: () => number, xs: T[]): T => xs[Math.floor(r() * xs.length)];

interface Dev {
  cpe: TestCpe;
  hasSetting: boolean;
  /** What the ACS must consider true now (the owner's latest action it can know of). */
  joined: boolean;
  /** A flip made on the device, known to the ACS at the device's next Inform. */
  pendingDevice?: boolean;
  /** What happened to it, for the failure message. */
  log: string[];
  /** Its own random stream: runs replay per device whatever the interleaving of devices. */
  rnd: () => number;
}

describe('consent: randomised sessions (integration)', function () {
  this.timeout(120_000);
  const seed = Number(process.env.TEST_SEED ?? Math.floor(Math.random() * 2 ** 31));
  const rnd = rng(seed);
  let acs: TestAcs;
  let api: ApiClient;

  before(async () => {
    ({ acs, api } = await startApiAcs({ diagnosticsProfile: staticProfile(), diagnosticsBatch: 2, diagnosticsRetentionIntervalMs: 0 }));
  });
  after(async () => {
    await acs?.stop();
  });

  it(`never reads diagnostics from a device that is not joined, and collects joined ones (seed ${seed})`, async () => {
    const devices: Dev[] = [];
    for (let i = 0; i < 8; i++) {
      const hasSetting = i !== 3 && i !== 6;
      const start = hasSetting && rnd() < 0.5;
      const cpe = programCpe(acs.url, { kind: i % 2 ? 'tr181' : 'tr098', consent: hasSetting ? start : null });
      devices.push({ cpe, hasSetting, joined: start, log: [`start setting=${hasSetting ? start : 'none'}`], rnd: rng(seed + 7919 * (i + 1)) });
    }
    const violations: string[] = [];
    let eligible = 0;
    let collected = 0;
    let apiFlips = 0;
    let midSession = 0;
    let deviceFlips = 0;
    let reads = 0;

    const setApi = async (d: Dev, joined: boolean) => {
      const r = await api.req('PUT', `/api/v1/devices/${enc(d.cpe.id)}/consent`, { joined, channel: 'support' });
      assert.equal(r.status, 200, r.text);
      d.joined = joined;
      d.log.push(`api ${joined}`);
      apiFlips++;
    };

    const run = async (d: Dev, events: EventStruct[] | undefined) => {
      if (d.pendingDevice !== undefined) {
        // The Inform carries the change; the ACS knows it before it sends anything.
        d.joined = d.pendingDevice;
        d.pendingDevice = undefined;
      }
      d.log.push(`session ${events ? events.map((e) => e.eventCode).join('+') : 'periodic'} joined=${d.joined}`);
      const joinedAtStart = d.joined;
      let stayedJoined = d.joined;
      let sawDiagnostic = false;
      const r = await d.cpe.session({
        ...(events ? { events } : {}),
        async onRequest(req) {
          d.log.push(req.method === 'GetParameterValues' ? `GPV ${req.parameterNames.join(',')}` : req.method);
          if (isDiagnosticRead(req)) {
            reads++;
            sawDiagnostic = true;
            if (!d.joined) violations.push(`${d.cpe.id}: ${req.method} while not joined (seed ${seed}); history: ${d.log.slice(-12).join(' | ')}`);
          }
          if (d.rnd() < 0.2) {
            midSession++;
            await setApi(d, d.rnd() < 0.5);
            if (!d.joined) stayedJoined = false;
          }
          return undefined;
        },
      });
      assert.equal(r.ended, '204', `${d.cpe.id}: ${r.error?.message ?? ''} (seed ${seed})`);
      if (joinedAtStart && stayedJoined && !events?.some((e) => e.eventCode === '0 BOOTSTRAP')) {
        eligible++;
        if (sawDiagnostic) collected++;
        else violations.push(`${d.cpe.id}: joined, but nothing collected (seed ${seed})`);
      }
    };

    // Every device starts with a BOOTSTRAP: its setting is read, notification set.
    await Promise.all(devices.map((d) => run(d, BOOTSTRAP)));
    // Devices without a setting follow the API only; those with one, their setting.
    for (let round = 0; round < 6; round++) {
      await Promise.all(
        devices.map(async (d) => {
          const x = d.rnd();
          if (x < 0.25) await setApi(d, d.rnd() < 0.5);
          else if (x < 0.5 && d.hasSetting) {
            const param = consentParam(d.cpe.opts.dataModel);
            const next = d.cpe.get(param) !== 'true';
            d.cpe.setLocal(param, String(next));
            d.pendingDevice = next;
            d.log.push(`device ${next}`);
            deviceFlips++;
          }
          const events = pickOf<EventStruct[] | undefined>(d.rnd, [undefined, undefined, undefined, [{ eventCode: '1 BOOT', commandKey: '' }], [{ eventCode: '6 CONNECTION REQUEST', commandKey: '' }]]);
          await run(d, events);
        }),
      );
    }
    assert.deepEqual(violations, []);
    assert.ok(apiFlips > 5 && deviceFlips > 3 && midSession > 3, `flips: api ${apiFlips}, device ${deviceFlips}, mid-session ${midSession}`);
    assert.ok(eligible >= 5 && collected === eligible, `eligible ${eligible}, collected ${collected}`);
    assert.ok(reads > 10);
    // The ACS's view agrees with the owners' latest choices.
    for (const d of devices) {
      const c = (await api.get(`/api/v1/devices/${enc(d.cpe.id)}/consent`)).body;
      assert.equal(c.joined, d.joined, `${d.cpe.id} (seed ${seed})`);
      if (d.hasSetting && !d.pendingDevice) {
        // Synced: the device's setting says the same once the last change reached it.
        const pending = (await acs.queue.forDevice(d.cpe.id)).some((e) => e.origin.kind === 'consent' && e.status === 'queued');
        if (!pending) assert.equal(d.cpe.get(consentParam(d.cpe.opts.dataModel)), String(d.joined), `${d.cpe.id} setting (seed ${seed})`);
      }
    }
  });
});
