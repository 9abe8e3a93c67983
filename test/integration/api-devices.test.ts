// Operator API: finding devices (filters, sort, pagination), their parameters, sessions, tags,
// deletion.
import assert from 'node:assert/strict';
import { TestCpe } from '../support/cpe';
import type { TestAcs } from '../support/acs';
import { ApiClient, enc, startApiAcs } from '../support/api-client';

describe('operator API: devices', function () {
  let acs: TestAcs;
  let api: ApiClient;
  const cpes: TestCpe[] = [];

  before(async function () {
    ({ acs, api } = await startApiAcs());
    const specs: [string, string, 'tr098' | 'tr181', string][] = [
      ['00259E', 'HomeGW', 'tr098', '1.0.0'],
      ['00259E', 'HomeGW', 'tr098', '2.0.0'],
      ['00259E', 'Mini', 'tr098', '1.0.0'],
      ['0090D0', 'Router', 'tr181', '2.0.0'],
      ['0090D0', 'Router', 'tr181', '3.1.4'],
    ];
    for (const [i, [oui, productClass, dataModel, version]] of specs.entries()) {
      const root = dataModel === 'tr098' ? 'InternetGatewayDevice.' : 'Device.';
      const cpe = new TestCpe({
        url: acs.url,
        dataModel,
        deviceId: { manufacturer: 'Acme', oui, productClass, serialNumber: `DEV${i}` },
        params: { [`${root}DeviceInfo.SoftwareVersion`]: { value: version, type: 'xsd:string' } },
      });
      assert.equal((await cpe.session({ events: [{ eventCode: '1 BOOT', commandKey: '' }] })).ok, true);
      cpes.push(cpe);
    }
    // The last device was last seen long ago: offline, and an old last inform.
    const old = new Date(Date.now() - 3 * 86400_000);
    await acs.devices.flush(); // the sessions' own Inform writes land first
    await acs.devices.presence.updateOne({ _id: cpes[4].id }, { $set: { lastInformAt: old, onlineUntil: new Date(old.getTime() + 5400_000) } });
    await acs.flush();
  });

  after(async () => {
    await acs?.stop();
  });

  const ids = (body: { items: { id: string }[] }) => body.items.map((d) => d.id);
  const list = async (q: string) => {
    const r = await api.get(`/api/v1/devices?${q}`);
    assert.equal(r.status, 200, r.text);
    return r.body;
  };

  it('lists devices with a total count, sorted and paged', async function () {
    const all = await list('sort=id&limit=2');
    assert.equal(all.total, 5);
    assert.equal(all.items.length, 2);
    const sorted = cpes.map((c) => c.id).sort();
    assert.deepEqual(ids(all), sorted.slice(0, 2));
    assert.deepEqual(ids(await list('sort=id&limit=2&offset=2')), sorted.slice(2, 4));
    assert.deepEqual(ids(await list('sort=-id&limit=10')), [...sorted].reverse());
    const recent = await list('');
    assert.equal(recent.items[recent.items.length - 1].id, cpes[4].id, 'default: most recent inform first');
    const d = recent.items.find((x: { id: string }) => x.id === cpes[1].id);
    assert.equal(d.deviceId.oui, '00259E');
    assert.equal(d.deviceId.productClass, 'HomeGW');
    assert.equal(d.softwareVersion, '2.0.0');
    assert.equal(d.dataModel, 'TR-098');
    assert.equal(d.online, true);
    assert.ok(d.lastBootAt);
    assert.equal(d.parameters, undefined, 'lists carry no parameter trees');
  });

  it('filters by id, OUI, product class, software version, tag, last inform and online state', async function () {
    assert.deepEqual(ids(await list(`id=${enc(cpes[2].id)}`)), [cpes[2].id]);
    assert.equal((await list('idPrefix=0090D0-')).total, 2);
    assert.equal((await list('oui=00259e')).total, 3);
    assert.equal((await list('oui=00259E&productClass=HomeGW')).total, 2);
    assert.deepEqual(ids(await list('softwareVersion=2.0.0&sort=id')), [cpes[1].id, cpes[3].id].sort());
    assert.deepEqual(ids(await list('softwareVersion=3.1.4')), [cpes[4].id]);
    const dayAgo = new Date(Date.now() - 86400_000).toISOString();
    assert.deepEqual(ids(await list(`lastInformBefore=${enc(dayAgo)}`)), [cpes[4].id]);
    assert.equal((await list(`lastInformAfter=${enc(dayAgo)}`)).total, 4);
    assert.equal((await list('online=true')).total, 4);
    const offline = await list('online=false');
    assert.deepEqual(ids(offline), [cpes[4].id]);
    assert.equal(offline.items[0].online, false);
    assert.equal((await list('oui=0090D0&online=true')).total, 1);
    assert.equal((await list('productClass=Nothing')).total, 0);
    // a value that looks like a regex is taken literally
    assert.equal((await list(`idPrefix=${enc('.*')}`)).total, 0);
  });

  it('sorts and pages with criteria on identity and on presence together', async function () {
    // cpes[0..3] informed in that order; cpes[4] last informed three days ago.
    const byRecent = await list('oui=00259E&sort=-lastInformAt&limit=1&offset=1');
    assert.equal(byRecent.total, 3);
    assert.deepEqual(ids(byRecent), [cpes[1].id], 'the second most recent of the three');
    assert.deepEqual(ids(await list('oui=0090D0&sort=lastInformAt')), [cpes[4].id, cpes[3].id]);
    const onlineById = await list('online=true&sort=id&limit=2&offset=1');
    assert.equal(onlineById.total, 4);
    assert.deepEqual(ids(onlineById), cpes.slice(0, 4).map((c) => c.id).sort().slice(1, 3));
    const offlineTr181 = await list(`online=false&productClass=Router&lastInformBefore=${enc(new Date().toISOString())}`);
    assert.deepEqual(ids(offlineTr181), [cpes[4].id]);
    assert.ok(offlineTr181.items[0].lastInformAt < new Date(Date.now() - 86400_000).toISOString());
  });

  it('adds and removes tags, and finds devices by tag', async function () {
    const path = `/api/v1/devices/${enc(cpes[0].id)}/tags`;
    let r = await api.post(path, { add: ['wave1', 'lab'] });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body.tags.sort(), ['lab', 'wave1']);
    r = await api.post(path, { add: ['wave1'] });
    assert.deepEqual(r.body.tags.sort(), ['lab', 'wave1'], 'adding twice keeps one');
    await api.post(`/api/v1/devices/${enc(cpes[3].id)}/tags`, { add: ['wave1'] });
    assert.deepEqual(ids(await list('tag=wave1&sort=id')), [cpes[0].id, cpes[3].id].sort());
    r = await api.delete(`${path}/lab`);
    assert.deepEqual(r.body.tags, ['wave1']);
    r = await api.post(path, { remove: ['wave1'] });
    assert.deepEqual(r.body.tags, []);
    assert.deepEqual(ids(await list('tag=wave1')), [cpes[3].id]);
    assert.equal((await api.post(path, {})).status, 400);
    assert.equal((await api.post(path, { add: ['no spaces'] })).status, 400);
  });

  it('shows one device with its parameters, values and timestamps, and its sessions', async function () {
    const c = cpes[3];
    const r = await api.get(`/api/v1/devices/${enc(c.id)}`);
    assert.equal(r.status, 200, r.text);
    const d = r.body;
    assert.equal(d.id, c.id);
    assert.deepEqual(d.deviceId, { manufacturer: 'Acme', oui: '0090D0', productClass: 'Router', serialNumber: 'DEV3' });
    assert.equal(d.dataModel, 'TR-181');
    assert.equal(d.inSession, false);
    assert.equal(d.online, true);
    assert.ok(Date.parse(d.lastInformAt) > Date.now() - 60_000);
    assert.ok(d.lastBootAt);
    assert.deepEqual(d.lastEvents, ['1 BOOT']);
    const sv = d.parameters['Device.DeviceInfo.SoftwareVersion'];
    assert.equal(sv.value, '2.0.0');
    assert.equal(sv.type, 'xsd:string');
    assert.ok(Date.parse(sv.timestamp) > 0);
    assert.ok(d.parameters['Device.ManagementServer.ConnectionRequestURL']);
    const only = (await api.get(`/api/v1/devices/${enc(c.id)}?parameters=Device.DeviceInfo.`)).body;
    assert.deepEqual(Object.keys(only.parameters).sort(), ['Device.DeviceInfo.HardwareVersion', 'Device.DeviceInfo.ProvisioningCode', 'Device.DeviceInfo.SoftwareVersion']);

    await c.session();
    await acs.flush();
    const s = await api.get(`/api/v1/devices/${enc(c.id)}/sessions`);
    assert.equal(s.status, 200, s.text);
    assert.equal(s.body.items.length, 2);
    const [latest, first] = s.body.items;
    assert.deepEqual(first.events, ['1 BOOT']);
    assert.deepEqual(latest.events, ['2 PERIODIC']);
    for (const x of s.body.items) {
      assert.equal(x.outcome, 'completed');
      assert.equal(x.status, 'closed');
      assert.ok(x.connectedAt && x.disconnectedAt);
      assert.ok(x.durationMs >= 0);
      assert.equal(x.durationMs, Date.parse(x.disconnectedAt) - Date.parse(x.connectedAt));
      assert.match(x.remote, /127\.0\.0\.1/);
    }
    assert.equal((await api.get(`/api/v1/devices/${enc(c.id)}/sessions?limit=1`)).body.items.length, 1);
  });

  it('never shows secret parameter values', async function () {
    const c = cpes[0];
    const secret = 'InternetGatewayDevice.ManagementServer.Password';
    const t = await api.post(`/api/v1/devices/${enc(c.id)}/tasks`, {
      name: 'setParameterValues',
      parameterValues: [{ name: secret, value: 'correct horse battery' }],
    });
    assert.equal(t.status, 201, t.text);
    assert.equal(t.body.args.parameterValues[0].value, '[redacted]');
    await c.session();
    const got = await api.get(`/api/v1/tasks/${t.body.id}`);
    assert.equal(got.body.status, 'done', got.text);
    assert.equal(c.get('ManagementServer.Password'), 'correct horse battery', 'the device got it');
    // A CPE that reads a secret back: stored, never shown.
    await acs.devices.setParams(c.id, [{ name: secret, value: 'correct horse battery', type: 'xsd:string' }], new Date());
    const dev = await api.get(`/api/v1/devices/${enc(c.id)}`);
    assert.equal(dev.body.parameters[secret].value, '[redacted]');
    for (const text of [dev.text, got.text]) assert.equal(text.includes('correct horse battery'), false);
  });

  it('deletes a device (admin), cancelling its queued tasks', async function () {
    const c = cpes[2];
    const t = await api.post(`/api/v1/devices/${enc(c.id)}/tasks`, { name: 'reboot' });
    const r = await api.delete(`/api/v1/devices/${enc(c.id)}`);
    assert.equal(r.status, 204);
    assert.equal(r.text, '');
    assert.equal((await api.get(`/api/v1/devices/${enc(c.id)}`)).status, 404);
    assert.equal((await api.get(`/api/v1/tasks/${t.body.id}`)).body.status, 'cancelled');
    assert.equal((await api.delete(`/api/v1/devices/${enc(c.id)}`)).status, 404);
    const s = await c.session();
    assert.deepEqual(s.acsRequests, [], 'nothing queued survives the deletion');
    assert.equal((await api.get(`/api/v1/devices/${enc(c.id)}`)).status, 200, 'it registers again at its next Inform');
  });

  it('handles device ids with escaped characters', async function () {
    const cpe = new TestCpe({
      url: acs.url,
      dataModel: 'tr098',
      deviceId: { manufacturer: 'Acme', oui: '00259E', productClass: 'Home GW/2', serialNumber: 'SN 7' },
    });
    await cpe.session();
    assert.equal(cpe.id, '00259E-Home%20GW%2F2-SN%207');
    const r = await api.get(`/api/v1/devices/${enc(cpe.id)}`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.id, cpe.id);
    assert.equal((await api.post(`/api/v1/devices/${enc(cpe.id)}/tags`, { add: ['odd'] })).status, 200);
    assert.deepEqual(ids(await list(`id=${enc(cpe.id)}`)), [cpe.id]);
  });
});
