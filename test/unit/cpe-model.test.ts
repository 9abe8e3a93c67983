// The simulated CPE's own data-model handlers (test/support/cpe-model.ts via TestCpe.handle):
// pure, no server.
import assert from 'node:assert/strict';
import { TestCpe, makeFleet } from '../support/cpe';
import type { CpeResponse, SoapFault } from '../../cwmp/types';

function cpe(dataModel: 'tr098' | 'tr181'): TestCpe {
  return new TestCpe({
    url: 'http://127.0.0.1:9/acs',
    dataModel,
    deviceId: { manufacturer: 'SimCo', oui: '00259E', productClass: 'SimRouter', serialNumber: 'UNIT0001' },
  });
}

function ok<M extends CpeResponse['method']>(r: CpeResponse | SoapFault, method: M): Extract<CpeResponse, { method: M }> {
  if (r.method === 'Fault') assert.fail(`expected ${method}, got fault ${r.code} ${r.message}`);
  assert.equal(r.method, method);
  return r as Extract<CpeResponse, { method: M }>;
}

function fault(r: CpeResponse | SoapFault, code: number): SoapFault {
  if (r.method !== 'Fault') assert.fail(`expected fault ${code}, got ${r.method}`);
  assert.equal(r.code, code);
  return r;
}

describe('test CPE data model', () => {
  describe('GetParameterValues', () => {
    it('answers full names and partial paths, hiding secrets', () => {
      const c = cpe('tr181');
      const r = ok(
        c.handle({ method: 'GetParameterValues', parameterNames: ['Device.DeviceInfo.', 'Device.ManagementServer.ConnectionRequestPassword'] }),
        'GetParameterValuesResponse',
      );
      const byName = new Map(r.parameterList.map((p) => [p.name, p]));
      assert.equal(byName.get('Device.DeviceInfo.SerialNumber')?.value, 'UNIT0001');
      assert.equal(byName.get('Device.DeviceInfo.SerialNumber')?.type, 'xsd:string');
      assert.equal(byName.get('Device.DeviceInfo.UpTime')?.type, 'xsd:unsignedInt');
      assert.ok(r.parameterList.filter((p) => p.name.startsWith('Device.DeviceInfo.')).length >= 8);
      assert.ok(r.parameterList.every((p) => !p.name.startsWith('Device.ManagementServer.') || p.name.endsWith('Password')));
      assert.equal(byName.get('Device.ManagementServer.ConnectionRequestPassword')?.value, '');
    });

    it('reads a TR-098 subtree with instances', () => {
      const c = cpe('tr098');
      const r = ok(
        c.handle({ method: 'GetParameterValues', parameterNames: ['InternetGatewayDevice.LANDevice.1.WLANConfiguration.'] }),
        'GetParameterValuesResponse',
      );
      const names = r.parameterList.map((p) => p.name);
      assert.ok(names.includes('InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.SSID'));
      assert.ok(names.includes('InternetGatewayDevice.LANDevice.1.WLANConfiguration.2.SSID'));
      assert.ok(names.every((n) => n.startsWith('InternetGatewayDevice.LANDevice.1.WLANConfiguration.')));
    });

    it('faults 9005 on an unknown name or path', () => {
      const c = cpe('tr181');
      fault(c.handle({ method: 'GetParameterValues', parameterNames: ['Device.DeviceInfo.Nope'] }), 9005);
      fault(c.handle({ method: 'GetParameterValues', parameterNames: ['Device.Nope.'] }), 9005);
      // a parameter name with a trailing dot is a path that does not exist
      fault(c.handle({ method: 'GetParameterValues', parameterNames: ['Device.DeviceInfo.SerialNumber.'] }), 9005);
    });
  });

  describe('SetParameterValues', () => {
    it('rejects the whole request with per-parameter fault entries, changing nothing', () => {
      const c = cpe('tr181');
      const before = c.get('ManagementServer.PeriodicInformInterval');
      const r = fault(
        c.handle({
          method: 'SetParameterValues',
          parameterKey: 'k1',
          parameterList: [
            { name: 'Device.ManagementServer.PeriodicInformEnable', value: 'false', type: 'xsd:boolean' }, // valid
            { name: 'Device.DeviceInfo.SerialNumber', value: 'X', type: 'xsd:string' }, // read-only
            { name: 'Device.ManagementServer.PeriodicInformInterval', value: '60', type: 'xsd:string' }, // wrong type
            { name: 'Device.Nope', value: '1', type: 'xsd:string' }, // unknown
            { name: 'Device.WiFi.Radio.1.Channel', value: 'eleven', type: 'xsd:unsignedInt' }, // bad value
          ],
        }),
        9003,
      );
      assert.deepEqual(
        r.setParameterValuesFaults.map((f) => [f.parameterName, f.faultCode]),
        [
          ['Device.DeviceInfo.SerialNumber', 9008],
          ['Device.ManagementServer.PeriodicInformInterval', 9006],
          ['Device.Nope', 9005],
          ['Device.WiFi.Radio.1.Channel', 9007],
        ],
      );
      assert.ok(r.setParameterValuesFaults.every((f) => f.faultString.length > 0));
      assert.equal(c.get('ManagementServer.PeriodicInformEnable'), 'true');
      assert.equal(c.get('ManagementServer.PeriodicInformInterval'), before);
      assert.equal(c.get('ManagementServer.ParameterKey'), '');
    });

    it('applies a valid request atomically and updates ParameterKey', () => {
      const c = cpe('tr098');
      const r = ok(
        c.handle({
          method: 'SetParameterValues',
          parameterKey: 'job-42',
          parameterList: [
            { name: 'InternetGatewayDevice.ManagementServer.PeriodicInformInterval', value: '300', type: 'xsd:unsignedInt' },
            { name: 'InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.SSID', value: 'home', type: 'xsd:string' },
            { name: 'InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.KeyPassphrase', value: 'secret123', type: '' },
          ],
        }),
        'SetParameterValuesResponse',
      );
      assert.equal(r.status, 0);
      assert.equal(c.get('ManagementServer.PeriodicInformInterval'), '300');
      assert.equal(c.get('LANDevice.1.WLANConfiguration.1.SSID'), 'home');
      assert.equal(c.get('ManagementServer.ParameterKey'), 'job-42');
      // stored, but reads back empty
      assert.equal(c.get('LANDevice.1.WLANConfiguration.1.KeyPassphrase'), 'secret123');
      const g = ok(
        c.handle({ method: 'GetParameterValues', parameterNames: ['InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.KeyPassphrase'] }),
        'GetParameterValuesResponse',
      );
      assert.equal(g.parameterList[0].value, '');
    });

    it('faults 9003 on a duplicated name', () => {
      const c = cpe('tr181');
      const pv = { name: 'Device.ManagementServer.PeriodicInformInterval', value: '60', type: 'xsd:unsignedInt' };
      fault(c.handle({ method: 'SetParameterValues', parameterKey: '', parameterList: [pv, pv] }), 9003);
    });
  });

  describe('AddObject / DeleteObject', () => {
    it('creates numbered instances from the template and keeps NumberOfEntries', () => {
      const c = cpe('tr181');
      const a1 = ok(c.handle({ method: 'AddObject', objectName: 'Device.NAT.PortMapping.', parameterKey: 'a1' }), 'AddObjectResponse');
      const a2 = ok(c.handle({ method: 'AddObject', objectName: 'Device.NAT.PortMapping.', parameterKey: 'a2' }), 'AddObjectResponse');
      assert.deepEqual([a1.instanceNumber, a1.status, a2.instanceNumber], [1, 0, 2]);
      assert.equal(c.get('NAT.PortMappingNumberOfEntries'), '2');
      assert.equal(c.get('ManagementServer.ParameterKey'), 'a2');
      assert.equal(c.params.get('Device.NAT.PortMapping.2.ExternalPort')?.type, 'xsd:unsignedInt');
      assert.equal(c.params.get('Device.NAT.PortMapping.2.ExternalPort')?.writable, true);

      ok(
        c.handle({
          method: 'SetParameterValues',
          parameterKey: '',
          parameterList: [{ name: 'Device.NAT.PortMapping.2.ExternalPort', value: '8080', type: 'xsd:unsignedInt' }],
        }),
        'SetParameterValuesResponse',
      );

      const names = ok(
        c.handle({ method: 'GetParameterNames', parameterPath: 'Device.NAT.PortMapping.', nextLevel: true }),
        'GetParameterNamesResponse',
      );
      assert.deepEqual(
        names.parameterList.map((p) => [p.name, p.writable]),
        [
          ['Device.NAT.PortMapping.1.', true],
          ['Device.NAT.PortMapping.2.', true],
        ],
      );

      ok(c.handle({ method: 'DeleteObject', objectName: 'Device.NAT.PortMapping.1.', parameterKey: 'd1' }), 'DeleteObjectResponse');
      assert.equal(c.get('NAT.PortMappingNumberOfEntries'), '1');
      assert.equal(c.params.has('Device.NAT.PortMapping.1.Enable'), false);
      assert.equal(c.get('NAT.PortMapping.2.ExternalPort'), '8080');
      // numbers are not reused below the highest
      const a3 = ok(c.handle({ method: 'AddObject', objectName: 'Device.NAT.PortMapping.', parameterKey: '' }), 'AddObjectResponse');
      assert.equal(a3.instanceNumber, 3);
    });

    it('adds into nested TR-098 tables and counts with the TR-098 counter name', () => {
      const c = cpe('tr098');
      const a = ok(
        c.handle({ method: 'AddObject', objectName: 'InternetGatewayDevice.LANDevice.1.WLANConfiguration.', parameterKey: '' }),
        'AddObjectResponse',
      );
      assert.equal(a.instanceNumber, 3);
      assert.equal(c.get('LANDevice.1.LANWLANConfigurationNumberOfEntries'), '3');
      const pm = 'InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.PortMapping.';
      ok(c.handle({ method: 'AddObject', objectName: pm, parameterKey: '' }), 'AddObjectResponse');
      assert.equal(c.get('WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.PortMappingNumberOfEntries'), '1');
      assert.equal(c.get('WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.PortMapping.1.PortMappingProtocol'), 'TCP');
    });

    it('faults on objects that are not tables or instances', () => {
      const c = cpe('tr181');
      fault(c.handle({ method: 'AddObject', objectName: 'Device.DeviceInfo.', parameterKey: '' }), 9005);
      fault(c.handle({ method: 'AddObject', objectName: 'Device.NAT.PortMapping', parameterKey: '' }), 9005);
      fault(c.handle({ method: 'DeleteObject', objectName: 'Device.NAT.PortMapping.7.', parameterKey: '' }), 9005);
      fault(c.handle({ method: 'DeleteObject', objectName: 'Device.IP.Interface.1.', parameterKey: '' }), 9003);
    });
  });

  describe('GetParameterNames and attributes', () => {
    it('lists the next level and whole subtrees', () => {
      const c = cpe('tr181');
      const root = ok(c.handle({ method: 'GetParameterNames', parameterPath: '', nextLevel: true }), 'GetParameterNamesResponse');
      assert.deepEqual(root.parameterList, [{ name: 'Device.', writable: false }]);
      const top = ok(c.handle({ method: 'GetParameterNames', parameterPath: 'Device.', nextLevel: true }), 'GetParameterNamesResponse');
      const topNames = top.parameterList.map((p) => p.name);
      assert.ok(topNames.includes('Device.RootDataModelVersion'));
      assert.ok(topNames.includes('Device.DeviceInfo.'));
      assert.ok(topNames.includes('Device.NAT.'));
      assert.ok(topNames.every((n) => n.slice('Device.'.length).replace(/\.$/, '').indexOf('.') < 0));
      const sub = ok(c.handle({ method: 'GetParameterNames', parameterPath: 'Device.NAT.', nextLevel: false }), 'GetParameterNamesResponse');
      assert.deepEqual(
        sub.parameterList.map((p) => p.name),
        ['Device.NAT.', 'Device.NAT.PortMappingNumberOfEntries', 'Device.NAT.PortMapping.'],
      );
      fault(c.handle({ method: 'GetParameterNames', parameterPath: 'Device.DeviceInfo.SerialNumber', nextLevel: true }), 9003);
    });

    it('keeps notification attributes and protects forced-active ones', () => {
      const c = cpe('tr181');
      ok(
        c.handle({
          method: 'SetParameterAttributes',
          parameterList: [
            { name: 'Device.WiFi.SSID.1.SSID', notificationChange: true, notification: 1, accessListChange: false, accessList: [] },
          ],
        }),
        'SetParameterAttributesResponse',
      );
      const a = ok(
        c.handle({ method: 'GetParameterAttributes', parameterNames: ['Device.WiFi.SSID.1.SSID', 'Device.DeviceInfo.SoftwareVersion'] }),
        'GetParameterAttributesResponse',
      );
      assert.deepEqual(
        a.parameterList.map((p) => [p.name, p.notification]),
        [
          ['Device.WiFi.SSID.1.SSID', 1],
          ['Device.DeviceInfo.SoftwareVersion', 2],
        ],
      );
      fault(
        c.handle({
          method: 'SetParameterAttributes',
          parameterList: [
            { name: 'Device.DeviceInfo.SoftwareVersion', notificationChange: true, notification: 0, accessListChange: false, accessList: [] },
          ],
        }),
        9009,
      );
    });
  });

  describe('Inform parameters and other RPCs', () => {
    it('serves the Inform from the template without copying the model', () => {
      const c = cpe('tr098');
      const list = c.model.informParams();
      assert.equal(c.model.materialized, false);
      const names = list.map((p) => p.name);
      assert.ok(names.includes('InternetGatewayDevice.DeviceInfo.SoftwareVersion'));
      assert.ok(names.includes('InternetGatewayDevice.ManagementServer.ConnectionRequestURL'));
      assert.ok(names.includes('InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.ExternalIPAddress'));
      const ip = list.find((p) => p.name.endsWith('ExternalIPAddress'))!.value;
      assert.match(ip, /^\d+\.\d+\.\d+\.\d+$/);
      // same values once materialized
      assert.equal(c.params.get('InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.ExternalIPAddress')?.value, ip);
    });

    it('reports notified local changes in the next Inform', () => {
      const c = cpe('tr181');
      c.handle({
        method: 'SetParameterAttributes',
        parameterList: [{ name: 'Device.WiFi.SSID.1.SSID', notificationChange: true, notification: 2, accessListChange: false, accessList: [] }],
      });
      c.setLocal('Device.WiFi.SSID.1.SSID', 'renamed');
      c.setLocal('Device.WiFi.SSID.2.SSID', 'not notified');
      assert.equal(c.model.hasValueChange, true);
      const list = c.model.informParams();
      assert.ok(list.some((p) => p.name === 'Device.WiFi.SSID.1.SSID' && p.value === 'renamed'));
      assert.ok(!list.some((p) => p.name === 'Device.WiFi.SSID.2.SSID'));
      assert.ok(list.some((p) => p.name === 'Device.RootDataModelVersion'));
    });

    it('queues transfers, cancels them and faults unknown methods', () => {
      const c = cpe('tr181');
      ok(
        c.handle({
          method: 'Download',
          commandKey: 'fw1',
          fileType: '1 Firmware Upgrade Image',
          url: 'http://127.0.0.1/fw.bin',
          username: '',
          password: '',
          fileSize: 10,
          targetFileName: '',
          delaySeconds: 0,
          successURL: '',
          failureURL: '',
        }),
        'DownloadResponse',
      );
      const q = ok(c.handle({ method: 'GetAllQueuedTransfers' }), 'GetAllQueuedTransfersResponse');
      assert.deepEqual(q.transferList.map((t) => [t.commandKey, t.isDownload, t.fileType]), [['fw1', true, '1 Firmware Upgrade Image']]);
      ok(c.handle({ method: 'CancelTransfer', commandKey: 'fw1' }), 'CancelTransferResponse');
      fault(c.handle({ method: 'CancelTransfer', commandKey: 'fw1' }), 9021);
      const m = ok(c.handle({ method: 'GetRPCMethods' }), 'GetRPCMethodsResponse');
      assert.ok(m.methodList.includes('GetParameterValues') && m.methodList.includes('Download'));
      fault(c.handle({ method: 'Nonsense' } as never), 9000);
    });
  });

  it('makeFleet gives distinct serials, half TR-098 and half TR-181', () => {
    const fleet = makeFleet(4, { url: 'http://127.0.0.1:9/' });
    assert.equal(new Set(fleet.map((c) => c.opts.deviceId.serialNumber)).size, 4);
    assert.deepEqual(
      fleet.map((c) => c.root),
      ['InternetGatewayDevice.', 'Device.', 'InternetGatewayDevice.', 'Device.'],
    );
    assert.equal(new Set(fleet.map((c) => c.id)).size, 4);
  });
});
