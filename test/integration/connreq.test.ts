// Connection requests against the real server, FerretDB and Redis: the ACS wakes simulated
// CPEs over HTTP (Digest) and UDP (Annex G), provisions their credentials at BOOTSTRAP, and
// reports auth failures, busy devices and unreachable ones.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { TestCpe, type ParamOverride, type SessionResult } from '../support/cpe';
import { startTestAcs, type TestAcs } from '../support/acs';
import { CONNECTION_REQUEST, CrListener, UdpCrListener } from '../support/cr-listener';
import { parseUdpConnectionRequest } from '../../cwmp/udp-connection-request';
import { freePort } from '../../tools/local-services';

const MS = 'InternetGatewayDevice.ManagementServer.';
let serial = 0;

function cpeFor(acs: TestAcs, params: Record<string, ParamOverride>, bootstrap = false): TestCpe {
  serial += 1;
  return new TestCpe({
    url: acs.url,
    deviceId: { manufacturer: 'Acme', oui: '00AABB', productClass: 'CR1', serialNumber: `CR${Date.now()}${serial}` },
    dataModel: 'tr098',
    params,
    bootstrap,
  });
}

const crUrl = (url: string): Record<string, ParamOverride> => ({ [`${MS}ConnectionRequestURL`]: { value: url, type: 'xsd:string' } });

/** The credentials the CPE's data model holds now (what a real CPE checks against). */
const cpeCreds = (cpe: TestCpe) => () => ({
  username: cpe.get('ManagementServer.ConnectionRequestUsername') ?? '',
  password: cpe.get('ManagementServer.ConnectionRequestPassword') ?? '',
});

async function until(f: () => boolean, ms = 2000): Promise<void> {
  for (const end = Date.now() + ms; !f(); ) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

const wasWoken = (r: unknown): boolean => {
  const s = r as SessionResult;
  return s.ok && s.events.some((e) => e.eventCode === '6 CONNECTION REQUEST');
};

/**
 * A CPE with only a UDPConnectionRequestAddress (at the listener) that the ACS has read and
 * whose credentials it holds: ready to be woken over UDP.
 */
async function udpOnlyCpe(acs: TestAcs, udp: UdpCrListener, creds: { username: string; password: string }): Promise<TestCpe> {
  const cpe = cpeFor(acs, { ...crUrl(''), [`${MS}UDPConnectionRequestAddress`]: { value: udp.address, type: 'xsd:string' } });
  await acs.queue.enqueue(cpe.id, { method: 'GetParameterValues', parameterNames: [`${MS}UDPConnectionRequestAddress`] });
  assert.ok((await cpe.session()).ok);
  await acs.crCredentials.set(cpe.id, creds);
  return cpe;
}

describe('connection requests (integration)', function () {
  this.timeout(20_000);
  let acs: TestAcs;
  const listeners: { close(): Promise<void> }[] = [];

  before(async () => {
    acs = await startTestAcs({ crTimeoutMs: 500, crMinIntervalMs: 10_000, crUdpRepeats: 3 });
  });
  after(async () => {
    await Promise.all(listeners.map((l) => l.close()));
    await acs?.stop();
  });

  async function listen(opts: Parameters<typeof CrListener.start>[0]): Promise<CrListener> {
    const l = await CrListener.start(opts);
    listeners.push(l);
    return l;
  }

  describe('credentials provisioned at BOOTSTRAP', () => {
    let cpe: TestCpe;
    let listener: CrListener;

    before(async () => {
      let self: TestCpe | undefined;
      listener = await listen({
        credentials: () => cpeCreds(self!)(),
        onWake: () => self!.session({ events: [CONNECTION_REQUEST] }),
      });
      cpe = self = cpeFor(acs, crUrl(listener.url), true);
    });

    it('arrive at the CPE as SetParameterValues and are stored encrypted', async () => {
      const r = await cpe.session();
      assert.ok(r.ok, JSON.stringify(r.exchanges));
      assert.ok(r.events.some((e) => e.eventCode === '0 BOOTSTRAP'));
      const spv = r.acsRequests.find((q) => q.method === 'SetParameterValues');
      assert.ok(spv && spv.method === 'SetParameterValues', 'a SetParameterValues was sent');
      const sent = Object.fromEntries(spv.parameterList.map((p) => [p.name, p.value]));
      const { username, password } = cpeCreds(cpe)();
      assert.equal(sent[`${MS}ConnectionRequestUsername`], username);
      assert.equal(sent[`${MS}ConnectionRequestPassword`], password);
      assert.ok(password.length >= 20, 'a long random password');

      const raw = await acs.database.db.collection('connreq_credentials').findOne({ _id: cpe.id as never });
      assert.ok(raw?.active, 'confirmed by the device, so active');
      const text = JSON.stringify(raw);
      assert.ok(!text.includes(password), 'no plaintext password in the stored document');
      assert.ok(!text.includes(username), 'no plaintext username either');
      assert.deepEqual(await acs.crCredentials.get(cpe.id), { username, password });
      const device = JSON.stringify(await acs.devices.get(cpe.id));
      assert.ok(!device.includes(password), 'nothing of it in the devices document');
      const queued = JSON.stringify(await acs.queue.forDevice(cpe.id));
      assert.ok(!queued.includes(password), 'the answered queue entry no longer holds the password');
    });

    it('wakes the CPE with Digest and it opens a session with 6 CONNECTION REQUEST', async () => {
      const out = await acs.connectionRequests.wake(cpe.id);
      assert.deepEqual([out.result, out.status, out.via], ['woke', 200, 'http'], out.detail);
      assert.ok(wasWoken(await listener.nextWake()), 'the CPE informed with 6 CONNECTION REQUEST');
      assert.equal(listener.accepted, 1);
      assert.equal(listener.requests, 2, 'one challenge, one authenticated GET');
    });

    it('refuses a second wake within the interval unless forced', async () => {
      const again = await acs.connectionRequests.wake(cpe.id);
      assert.equal(again.result, 'rate-limited');
      assert.ok(again.retryAfter! > 0 && again.retryAfter! <= 10, String(again.retryAfter));
      assert.equal(listener.requests, 2, 'the device was not contacted');
      const forced = await acs.connectionRequests.wake(cpe.id, { force: true });
      assert.equal(forced.result, 'woke', forced.detail);
      assert.ok(wasWoken(await listener.nextWake()));
    });
  });

  it('a repeated BOOTSTRAP while the pair is still queued does not queue another', async () => {
    const cpe = cpeFor(acs, crUrl('http://127.0.0.1:9/cr'), true);
    const first = await cpe.session({ dropAfterInform: true });
    assert.equal(first.ended, 'dropped');
    const bootstrap = { eventCode: '0 BOOTSTRAP', commandKey: '' };
    const second = await cpe.session({ events: [bootstrap] });
    assert.ok(second.ok, JSON.stringify(second.exchanges));
    const provisioning = (await acs.queue.forDevice(cpe.id)).filter((e) => e.origin.kind === 'cr-provision');
    assert.deepEqual(
      provisioning.map((e) => e.status),
      ['done'],
    );
    assert.deepEqual(await acs.crCredentials.get(cpe.id), cpeCreds(cpe)());
  });

  it('reports auth-failed when the device rejects the credentials', async () => {
    const listener = await listen({ credentials: { username: 'cpe-user', password: 'the-right-one' } });
    const cpe = cpeFor(acs, crUrl(listener.url));
    assert.ok((await cpe.session()).ok);
    await acs.crCredentials.set(cpe.id, { username: 'cpe-user', password: 'a-wrong-one' });
    const out = await acs.connectionRequests.wake(cpe.id);
    assert.deepEqual([out.result, out.status], ['auth-failed', 401], out.detail);
    assert.equal(listener.rejected, 1);
    assert.equal(listener.accepted, 0);
  });

  it('reports auth-failed when the device offers only Basic over plain HTTP', async () => {
    const listener = await listen({ credentials: { username: 'u', password: 'p' }, basic: true });
    const cpe = cpeFor(acs, crUrl(listener.url));
    assert.ok((await cpe.session()).ok);
    await acs.crCredentials.set(cpe.id, { username: 'u', password: 'p' });
    const out = await acs.connectionRequests.wake(cpe.id);
    assert.equal(out.result, 'auth-failed');
    assert.match(out.detail, /Basic/);
    assert.equal(listener.requests, 1, 'the password was never sent in the clear');
  });

  it('treats 503 as rate-limited and backs off for the Retry-After, even when forced', async () => {
    const listener = await listen({ credentials: { username: 'u', password: 'p' }, mode: '503', retryAfter: 120 });
    const cpe = cpeFor(acs, crUrl(listener.url));
    assert.ok((await cpe.session()).ok);
    const out = await acs.connectionRequests.wake(cpe.id);
    assert.deepEqual([out.result, out.status, out.retryAfter], ['rate-limited', 503, 120], out.detail);
    listener.mode = 'ok';
    const again = await acs.connectionRequests.wake(cpe.id, { force: true });
    assert.equal(again.result, 'rate-limited');
    assert.equal(again.status, undefined, 'decided without asking the device');
    assert.ok(again.retryAfter! > 100 && again.retryAfter! <= 120, String(again.retryAfter));
    assert.equal(listener.requests, 1);
  });

  it('reports unreachable for a closed port, and for a device that never answers within the timeout', async () => {
    const closed = cpeFor(acs, crUrl(`http://127.0.0.1:${await freePort()}/cr`));
    assert.ok((await closed.session()).ok);
    const refused = await acs.connectionRequests.wake(closed.id);
    assert.equal(refused.result, 'unreachable', refused.detail);

    const listener = await listen({ credentials: { username: 'u', password: 'p' }, mode: 'hang' });
    const silent = cpeFor(acs, crUrl(listener.url));
    assert.ok((await silent.session()).ok);
    const t0 = Date.now();
    const out = await acs.connectionRequests.wake(silent.id);
    const took = Date.now() - t0;
    assert.equal(out.result, 'unreachable', out.detail);
    assert.ok(took >= 450 && took < 2000, `gave up after ${took} ms (timeout 500 ms)`);
  });

  it('reports no-url for a device without a ConnectionRequestURL, and for an unknown device', async () => {
    const cpe = cpeFor(acs, crUrl(''));
    assert.ok((await cpe.session()).ok);
    assert.equal((await acs.connectionRequests.wake(cpe.id)).result, 'no-url');
    assert.equal((await acs.connectionRequests.wake('000000-none-none')).result, 'no-url');
  });

  it('falls back to a signed UDP connection request (Annex G) when HTTP is unreachable', async () => {
    const creds = { username: 'udp-user', password: 'udp-secret' };
    let cpe: TestCpe | undefined;
    const udp = await UdpCrListener.start({ credentials: creds, onWake: () => cpe!.session({ events: [CONNECTION_REQUEST] }) });
    listeners.push(udp);
    cpe = cpeFor(acs, {
      ...crUrl(`http://127.0.0.1:${await freePort()}/cr`),
      [`${MS}UDPConnectionRequestAddress`]: { value: udp.address, type: 'xsd:string' },
    });
    // The ACS learns the address the way it would from a real device: by reading it.
    await acs.queue.enqueue(cpe.id, { method: 'GetParameterValues', parameterNames: [`${MS}UDPConnectionRequestAddress`] });
    assert.ok((await cpe.session()).ok);
    await acs.crCredentials.set(cpe.id, creds);

    const out = await acs.connectionRequests.wake(cpe.id);
    assert.deepEqual([out.result, out.via], ['woke', 'udp'], out.detail);
    assert.ok(wasWoken(await udp.nextWake()), 'the CPE informed with 6 CONNECTION REQUEST');
    await until(() => udp.datagrams === 3); // the last one may still be in the socket's queue
    assert.deepEqual(udp.invalid, []);
    assert.equal(udp.valid, 1);
    assert.equal(udp.duplicates, 2, 'sent three times, woken once');

    // The signature checked independently of the code under test.
    const m = parseUdpConnectionRequest(udp.received[0])!;
    assert.match(udp.received[0], new RegExp(`^GET http://${udp.address}\\?ts=\\d+&id=\\d+&un=udp-user&cn=\\w+&sig=[0-9a-f]{40} HTTP/1\\.1\\r\\nHost: ${udp.address}\\r\\n\\r\\n$`));
    assert.equal(m.sig, createHmac('sha1', 'udp-secret').update(`${m.ts}${m.id}udp-user${m.cn}`).digest('hex'));
  });

  it('the UDP listener rejects a datagram signed with the wrong password', async () => {
    const udp = await UdpCrListener.start({ credentials: { username: 'u', password: 'right' } });
    listeners.push(udp);
    const cpe = await udpOnlyCpe(acs, udp, { username: 'u', password: 'wrong' });
    const out = await acs.connectionRequests.wake(cpe.id);
    assert.deepEqual([out.result, out.via], ['woke', 'udp'], 'sent: UDP cannot tell');
    await until(() => udp.datagrams === 3);
    assert.equal(udp.valid, 0);
    assert.ok(udp.invalid.length >= 1 && udp.invalid.every((w) => w === 'bad signature'), udp.invalid.join());
  });

  it('never sends a connection request to a link-local (metadata) address a device reported', async () => {
    const cpe = cpeFor(acs, crUrl('http://169.254.169.254/latest/meta-data/'));
    assert.ok((await cpe.session()).ok);
    const t0 = Date.now();
    const out = await acs.connectionRequests.wake(cpe.id, { force: true });
    assert.equal(out.result, 'error');
    assert.match(out.detail, /^not sent \(ConnectionRequestURL\): 169\.254\.169\.254 is a link-local address/);
    assert.ok(Date.now() - t0 < 300, 'refused before any connection attempt');
  });

  describe('with loopback not allowed (as in production)', () => {
    let strict: TestAcs;
    before(async () => {
      strict = await startTestAcs({ crTimeoutMs: 500, crAllowLoopback: false });
    });
    after(async () => {
      await strict?.stop();
    });

    it('refuses a loopback URL, by address and by a name that resolves to it, and the listener hears nothing', async () => {
      const listener = await listen({ credentials: { username: 'u', password: 'p' } });
      const port = new URL(listener.url).port;
      for (const url of [listener.url, `http://localhost:${port}/cr`, `http://[::ffff:127.0.0.1]:${port}/cr`]) {
        const cpe = cpeFor(strict, crUrl(url));
        assert.ok((await cpe.session()).ok);
        const out = await strict.connectionRequests.wake(cpe.id, { force: true });
        assert.equal(out.result, 'error', url);
        assert.match(out.detail, /^not sent \(ConnectionRequestURL\): .*loopback/, url);
      }
      assert.equal(listener.requests, 0);
    });

    it('does not send UDP connection requests to a loopback address either', async () => {
      const udp = await UdpCrListener.start({ credentials: { username: 'u', password: 'p' } });
      listeners.push(udp);
      const cpe = await udpOnlyCpe(strict, udp, { username: 'u', password: 'p' });
      const out = await strict.connectionRequests.wake(cpe.id, { force: true });
      assert.deepEqual([out.result, out.via], ['error', 'udp'], out.detail);
      assert.match(out.detail, /^not sent \(UDPConnectionRequestAddress\): 127\.0\.0\.1 is a loopback address/);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(udp.datagrams, 0);
    });
  });
});
