// The collection profile as data (issue 4): the shipped default validates, bad profiles are
// refused with the reason, lookups follow the allowlist.
import assert from 'node:assert/strict';
import { DEFAULT_PROFILE } from '../../src/diagnostics/default-profile';
import { CompiledProfile, covers, parseProfile } from '../../src/diagnostics/profile';

const clone = (): any => JSON.parse(JSON.stringify(DEFAULT_PROFILE));

describe('collection profile (unit)', () => {
  const p = new CompiledProfile(parseProfile(DEFAULT_PROFILE, 'default'));

  it('ships every category of diagnostics.md, sensitive ones off', () => {
    const names = p.categories().map((c) => c.name);
    for (const c of ['identity', 'network', 'cellular', 'usage', 'stability', 'power', 'wifi', 'settings', 'management', 'errors', 'location', 'communications']) {
      assert.ok(names.includes(c), c);
    }
    for (const c of p.categories()) {
      if (c.name === 'location' || c.name === 'communications') {
        assert.equal(c.sensitive, true);
        assert.equal(c.enabled, false);
      }
    }
    assert.equal(p.category('communications')!.analytics, false);
  });

  it('classifies names with {i} wildcards and protections', () => {
    const e = p.classify('Device.WiFi.SSID.2.SSID')!;
    assert.equal(e.category, 'wifi');
    assert.equal(e.protection, 'encrypt');
    assert.equal(e.wildcardRoot, 'Device.WiFi.SSID.');
    const ip = p.classify('InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.ExternalIPAddress')!;
    assert.equal(ip.protection, 'pseudonymise');
    assert.equal(ip.identifier, 'ip');
    assert.equal(p.classify('Device.WiFi.SSID.x.SSID'), null);
    assert.equal(p.classify('Device.ManagementServer.URL'), null);
    assert.equal(p.classify('Device.DeviceInfo.SerialNumber')!.identifier, 'serial');
  });

  it('separates management parameters from diagnostics-only ones', () => {
    assert.equal(p.diagnosticOnly('Device.DeviceInfo.SoftwareVersion'), false, 'needed to manage any device');
    assert.equal(p.diagnosticOnly('Device.DeviceInfo.UpTime'), false, 'device status, managed like any parameter');
    assert.equal(p.diagnosticOnly('Device.WiFi.SSID.1.SSID'), true);
    assert.equal(p.diagnosticOnly('Device.Time.NTPServer1'), false, 'not on the profile');
    assert.deepEqual(p.touched('Device.Time.').map((e) => e.category), []);
    assert.ok(p.touched('Device.WiFi.').some((e) => e.category === 'wifi'));
    assert.ok(p.touched('').length > 10, 'the whole tree touches everything');
    assert.ok(!p.touched('Device.DeviceInfo.SerialNumber').length, 'management entries are exempt');
  });

  it('refuses what is not on an enabled category', () => {
    assert.equal(p.refusalFor('Device.WiFi.SSID.1.SSID'), null);
    assert.equal(p.refusalFor('Device.WiFi.SSID.'), null, 'a discovery root');
    assert.match(p.refusalFor('Device.WiFi.AccessPoint.1.Security.KeyPassphrase')!, /not on the collection profile/);
    assert.match(p.refusalFor('Device.DeviceInfo.Location.1.DataObject')!, /location is disabled.*admin/);
    assert.match(p.refusalFor('Device.Hosts.Host.')!, /not an instance table/);
  });

  it('covers() matches partial paths against patterns', () => {
    assert.ok(covers('Device.IP.', 'Device.IP.Interface.{i}.Status'));
    assert.ok(covers('Device.IP.Interface.3.', 'Device.IP.Interface.{i}.Status'));
    assert.ok(!covers('Device.IP.Interface.x.', 'Device.IP.Interface.{i}.Status'));
    assert.ok(covers('Device.IP.Interface.3.Status', 'Device.IP.Interface.{i}.Status'));
    assert.ok(!covers('Device.IP.Interface.3.Name', 'Device.IP.Interface.{i}.Status'));
  });

  it('rejects invalid profiles with a reason', () => {
    const cases: [(x: any) => void, RegExp][] = [
      [(x) => (x.categories.wifi.tr181 = ['Device.WiFi.']), /full parameter name/],
      [(x) => (x.categories.wifi.tr181 = ['Device.WiFi.*']), /full parameter name/],
      [(x) => (x.categories.wifi.tr098 = ['Device.WiFi.Radio.{i}.Enable']), /must start with InternetGatewayDevice/],
      [(x) => (x.categories.wifi.tr181 = ['Device.WiFi.X_ACME_Steering']), /belong under "vendor"/],
      [(x) => (x.categories.wifi.vendor.tr181 = ['Device.WiFi.Radio.{i}.Enable']), /must name an X_ extension/],
      [(x) => (x.categories.location.sensitive = false), /always a sensitive category/],
      [(x) => (x.categories.location.protection = 'plain'), /must be encrypted/],
      [(x) => (x.categories.communications.analytics = true), /never used in analytics/],
      [(x) => (x.categories.wifi.surprise = 1), /wifi/],
      [(x) => delete x.revision, /revision/],
    ];
    for (const [mutate, re] of cases) {
      const x = clone();
      mutate(x);
      assert.throws(() => parseProfile(x, 'test'), re);
    }
  });

  it('lets an admin enable a sensitive category', () => {
    const x = clone();
    x.categories.location.enabled = true;
    const q = new CompiledProfile(parseProfile(x, 'test'));
    assert.equal(q.refusalFor('Device.DeviceInfo.Location.1.DataObject'), null);
  });
});
