import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';

import { CwmpParseError, buildEnvelope, parseEnvelope } from '../../cwmp/codec';
import { escapeXml } from '../../cwmp/xml';
import { makeFault } from '../../cwmp/faults';
import type { CwmpMessage, CwmpNsVersion, Envelope, Inform, SoapFault } from '../../cwmp/types';

// Fixtures live in the source tree; tests run from dist/test/unit (or test/unit under ts-node).
const FIXTURES = [
  path.resolve(__dirname, '../fixtures/envelopes'),
  path.resolve(__dirname, '../../../test/fixtures/envelopes'),
].find((d) => fs.existsSync(d)) as string;

function fixture(name: string): string {
  return fs.readFileSync(path.join(FIXTURES, name), 'utf8');
}

function parseFixture(name: string): Envelope {
  return parseEnvelope(fixture(name));
}

function bodyOf<M extends CwmpMessage['method']>(env: Envelope, method: M): Extract<CwmpMessage, { method: M }> {
  assert.ok(env.body, 'body is null');
  assert.equal(env.body.method, method);
  return env.body as Extract<CwmpMessage, { method: M }>;
}

/** Asserts fn throws a CwmpParseError with that faultCode and a message matching re. */
function assertParseError(fn: () => unknown, faultCode: number, re: RegExp): CwmpParseError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof CwmpParseError, `expected CwmpParseError, got ${String(caught)}`);
  assert.equal(caught.faultCode, faultCode, caught.message);
  assert.match(caught.message, re);
  return caught;
}

const SOAP = 'http://schemas.xmlsoap.org/soap/envelope/';

/** A minimal envelope around a body, with soap:/cwmp: prefixes (cwmp version selectable). */
function env(body: string, opts: { ns?: string; header?: string } = {}): string {
  const ns = opts.ns ?? 'urn:dslforum-org:cwmp-1-0';
  const header = opts.header === undefined ? '' : `<soap:Header>${opts.header}</soap:Header>`;
  return `<soap:Envelope xmlns:soap="${SOAP}" xmlns:cwmp="${ns}">${header}<soap:Body>${body}</soap:Body></soap:Envelope>`;
}

const ID_HEADER = '<cwmp:ID soap:mustUnderstand="1">id-77</cwmp:ID>';

// ------------------------------------------------------------------------------------------------

describe('cwmp codec: real-world envelopes', () => {
  it('TR-098 Inform (BOOTSTRAP + BOOT, arrayType, SOAP-ENV prefix)', () => {
    const e = parseFixture('inform-tr098-bootstrap.xml');
    assert.equal(e.ns, '1-0');
    assert.equal(e.id, '1');
    assert.equal(e.sessionTimeout, undefined);
    assert.equal(e.holdRequests, undefined);
    const m = bodyOf(e, 'Inform');
    assert.deepEqual(m.deviceId, {
      manufacturer: 'Zyxel & Co',
      oui: '001349',
      productClass: 'VMG8924-B10A',
      serialNumber: 'S090Y12345678',
    });
    assert.deepEqual(m.events, [
      { eventCode: '0 BOOTSTRAP', commandKey: '' },
      { eventCode: '1 BOOT', commandKey: '' },
    ]);
    assert.equal(m.maxEnvelopes, 1);
    assert.equal(m.currentTime, '2024-03-18T09:15:02+01:00');
    assert.equal(m.retryCount, 0);
    assert.equal(m.parameterList.length, 8);
    assert.deepEqual(m.parameterList[1], {
      name: 'InternetGatewayDevice.DeviceInfo.SpecVersion',
      value: '1.0',
      type: 'xsd:string',
    });
    assert.deepEqual(m.parameterList[4], { name: 'InternetGatewayDevice.DeviceInfo.ProvisioningCode', value: '', type: 'xsd:string' });
    assert.equal(m.parameterList[5].value, 'http://203.0.113.17:7547/cr?a=1&b=2');
    assert.deepEqual(m.parameterList[6], { name: 'InternetGatewayDevice.ManagementServer.ParameterKey', value: '', type: 'xsd:string' });
    assert.equal(m.parameterList[7].name, 'InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.ExternalIPAddress');
    assert.equal(m.parameterList[7].value, '203.0.113.17');
  });

  it('TR-181 Inform (1 BOOT + M Reboot, cwmp-1-2, SessionTimeout header)', () => {
    const e = parseFixture('inform-tr181-reboot.xml');
    assert.equal(e.ns, '1-2');
    assert.equal(e.id, 'cpe-7f3a');
    assert.equal(e.sessionTimeout, 30);
    const m = bodyOf(e, 'Inform');
    assert.deepEqual(m.deviceId, { manufacturer: 'iopsys', oui: '002207', productClass: 'EX400', serialNumber: 'E40A1B2C3D4E' });
    assert.deepEqual(m.events, [
      { eventCode: '1 BOOT', commandKey: '' },
      { eventCode: 'M Reboot', commandKey: 'reboot-task-42' },
    ]);
    assert.equal(m.retryCount, 2);
    assert.equal(m.currentTime, '2024-03-18T08:15:02Z');
    assert.deepEqual(m.parameterList[0], { name: 'Device.RootDataModelVersion', value: '2.15', type: 'xsd:string' });
    assert.deepEqual(m.parameterList[4], {
      name: 'Device.ManagementServer.ConnectionRequestURL',
      value: 'http://[2001:db8::1]:7547/',
      type: 'xsd:string',
    });
    assert.deepEqual(m.parameterList[6], { name: 'Device.DeviceInfo.UpTime', value: '37', type: 'xsd:unsignedInt' });
  });

  it('cwmp-1-4 Inform with SupportedCWMPVersions, unknown time, empty ProductClass, entities', () => {
    const e = parseFixture('inform-cwmp14-versions.xml');
    assert.equal(e.ns, '1-4');
    assert.equal(e.id, '1704067200');
    assert.equal(e.supportedCWMPVersions, '1.0, 1.1,1.2,1.3,1.4');
    assert.equal(e.sessionTimeout, 60);
    const m = bodyOf(e, 'Inform');
    assert.equal(m.deviceId.productClass, '');
    assert.equal(m.deviceId.oui, 'A0B439');
    assert.equal(m.currentTime, '0001-01-01T00:00:00Z');
    assert.deepEqual(
      m.events.map((x) => x.eventCode),
      ['2 PERIODIC', '4 VALUE CHANGE', '14 HEARTBEAT'],
    );
    assert.deepEqual(m.events[0], { eventCode: '2 PERIODIC', commandKey: '' });
    assert.deepEqual(m.parameterList[1], { name: 'Device.WiFi.SSID.1.SSID', value: 'Café <guest>', type: 'xsd:string' });
    assert.deepEqual(m.parameterList[2], { name: 'Device.WiFi.Radio.1.Enable', value: 'true', type: 'xsd:boolean' });
  });

  it('quirky firmware Inform (ns:/default namespace, no arrayType, padding, TRUE, no xsi:type, CDATA, extras)', () => {
    const e = parseFixture('inform-quirky.xml');
    assert.equal(e.ns, '1-1');
    assert.equal(e.id, 'quirk-1');
    const m = bodyOf(e, 'Inform');
    assert.deepEqual(m.deviceId, {
      manufacturer: 'TP-LINK',
      oui: 'F4F26D',
      productClass: 'Archer C7',
      serialNumber: '2178123000123',
    });
    assert.deepEqual(m.events, [{ eventCode: '6 CONNECTION REQUEST', commandKey: '' }]);
    assert.equal(m.maxEnvelopes, 1);
    assert.equal(m.retryCount, 3);
    assert.equal(m.currentTime, '2024-03-18T08:15:02');
    assert.deepEqual(m.parameterList, [
      { name: 'InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.Enable', value: 'TRUE', type: '' },
      { name: 'InternetGatewayDevice.DeviceInfo.SoftwareVersion', value: '3.15.3 Build 180114 Rel.39265n', type: 'xsd:string' },
      { name: 'InternetGatewayDevice.ManagementServer.ConnectionRequestURL', value: 'http://192.0.2.10:7547/tr069?x=1&y=2', type: 'xsd:string' },
    ]);
  });

  it('cwmp-1-0 Inform with namespaces declared on inner elements and XSD 1999 namespaces', () => {
    const e = parseFixture('inform-cwmp10-innerns.xml');
    assert.equal(e.ns, '1-0');
    assert.equal(e.id, '0');
    const m = bodyOf(e, 'Inform');
    assert.equal(m.deviceId.serialNumber, 'CP1234SA567');
    assert.deepEqual(m.events, [{ eventCode: '2 PERIODIC', commandKey: '' }]);
    assert.deepEqual(m.parameterList[1], {
      name: 'InternetGatewayDevice.ManagementServer.PeriodicInformInterval',
      value: '86400',
      type: 'xsd:unsignedInt',
    });
  });

  it('TransferComplete with a fault', () => {
    const e = parseFixture('transfercomplete-fault.xml');
    assert.equal(e.ns, '1-2');
    assert.equal(e.id, '100');
    assert.deepEqual(bodyOf(e, 'TransferComplete'), {
      method: 'TransferComplete',
      commandKey: 'fw-upgrade-2024-03',
      fault: { faultCode: 9010, faultString: 'Download failed: HTTP 404 Not Found' },
      startTime: '2024-03-18T08:10:00Z',
      completeTime: '2024-03-18T08:10:05Z',
    });
  });

  it('TransferComplete with FaultCode 0', () => {
    const m = bodyOf(parseFixture('transfercomplete-ok.xml'), 'TransferComplete');
    assert.equal(m.commandKey, 'fw-upgrade-2024-04');
    assert.deepEqual(m.fault, { faultCode: 0, faultString: '' });
    assert.equal(m.completeTime, '2024-04-02T01:03:12Z');
  });

  it('AutonomousTransferComplete', () => {
    assert.deepEqual(bodyOf(parseFixture('autonomous-transfercomplete.xml'), 'AutonomousTransferComplete'), {
      method: 'AutonomousTransferComplete',
      announceURL: 'http://announce.example.net/',
      transferURL: 'http://files.example.net/fw/EX400-6.2.2.bin',
      isDownload: true,
      fileType: '1 Firmware Upgrade Image',
      fileSize: 31457280,
      targetFileName: 'EX400-6.2.2.bin',
      fault: { faultCode: 0, faultString: '' },
      startTime: '2024-03-18T07:00:00Z',
      completeTime: '2024-03-18T07:02:30Z',
    });
  });

  it('RequestDownload', () => {
    assert.deepEqual(bodyOf(parseFixture('requestdownload.xml'), 'RequestDownload'), {
      method: 'RequestDownload',
      fileType: '3 Vendor Configuration File',
      fileTypeArg: [
        { name: 'Version', value: 'v2' },
        { name: 'Profile', value: 'residential' },
      ],
    });
  });

  it('Kicked', () => {
    const e = parseFixture('kicked.xml');
    assert.equal(e.id, '104');
    assert.deepEqual(bodyOf(e, 'Kicked'), {
      method: 'Kicked',
      command: 'activate',
      referer: 'http://portal.example.net/welcome',
      arg: 'plan=gold&term=12',
      next: 'http://portal.example.net/done',
    });
  });

  it('DUStateChangeComplete (repeated Results, CommandKey last)', () => {
    const m = bodyOf(parseFixture('dustatechangecomplete.xml'), 'DUStateChangeComplete');
    assert.equal(m.commandKey, 'du-batch-7');
    assert.equal(m.results.length, 2);
    assert.deepEqual(m.results[0], {
      uuid: '3f2504e0-4f89-11d3-9a0c-0305e82c3301',
      deploymentUnitRef: 'Device.SoftwareModules.DeploymentUnit.1',
      version: '1.2.0',
      currentState: 'Installed',
      resolved: true,
      executionUnitRefList: 'Device.SoftwareModules.ExecutionUnit.1',
      startTime: '2024-03-18T08:00:00Z',
      completeTime: '2024-03-18T08:00:09Z',
      fault: { faultCode: 0, faultString: '' },
    });
    assert.equal(m.results[1].currentState, 'Failed');
    assert.equal(m.results[1].resolved, false);
    assert.deepEqual(m.results[1].fault, { faultCode: 9018, faultString: 'File corrupted' });
  });

  it('GetParameterValuesResponse', () => {
    const e = parseFixture('getparametervalues-response.xml');
    assert.equal(e.id, '200');
    const m = bodyOf(e, 'GetParameterValuesResponse');
    assert.deepEqual(m.parameterList, [
      { name: 'Device.DeviceInfo.UpTime', value: '86399', type: 'xsd:unsignedInt' },
      { name: 'Device.WiFi.AccessPoint.1.Security.KeyPassphrase', value: '', type: 'xsd:string' },
      { name: 'Device.IP.Diagnostics.IPPing.AverageResponseTime', value: '12', type: 'xsd:unsignedInt' },
      { name: 'Device.Time.CurrentLocalTime', value: '2024-03-18T09:15:02+01:00', type: 'xsd:dateTime' },
    ]);
  });

  it('GetParameterNamesResponse (0/1/true Writable)', () => {
    assert.deepEqual(bodyOf(parseFixture('getparameternames-response.xml'), 'GetParameterNamesResponse').parameterList, [
      { name: 'Device.WiFi.SSID.', writable: false },
      { name: 'Device.WiFi.SSID.1.', writable: true },
      { name: 'Device.WiFi.SSID.1.SSID', writable: true },
    ]);
  });

  it('SetParameterValuesResponse', () => {
    assert.deepEqual(bodyOf(parseFixture('setparametervalues-response.xml'), 'SetParameterValuesResponse'), {
      method: 'SetParameterValuesResponse',
      status: 1,
    });
  });

  it('GetParameterAttributesResponse (empty and non-empty AccessList)', () => {
    assert.deepEqual(bodyOf(parseFixture('getparameterattributes-response.xml'), 'GetParameterAttributesResponse').parameterList, [
      { name: 'Device.DeviceInfo.SoftwareVersion', notification: 2, accessList: [] },
      { name: 'Device.WiFi.SSID.1.SSID', notification: 0, accessList: ['Subscriber'] },
    ]);
  });

  it('AddObjectResponse', () => {
    assert.deepEqual(bodyOf(parseFixture('addobject-response.xml'), 'AddObjectResponse'), {
      method: 'AddObjectResponse',
      instanceNumber: 3,
      status: 0,
    });
  });

  it('DownloadResponse', () => {
    assert.deepEqual(bodyOf(parseFixture('download-response.xml'), 'DownloadResponse'), {
      method: 'DownloadResponse',
      status: 1,
      startTime: '0001-01-01T00:00:00Z',
      completeTime: '0001-01-01T00:00:00Z',
    });
  });

  it('GetAllQueuedTransfersResponse', () => {
    assert.deepEqual(bodyOf(parseFixture('getallqueuedtransfers-response.xml'), 'GetAllQueuedTransfersResponse').transferList, [
      { commandKey: 'fw-1', state: 2, isDownload: true, fileType: '1 Firmware Upgrade Image', fileSize: 4194304, targetFileName: 'fw.bin' },
      { commandKey: 'log-1', state: 1, isDownload: false, fileType: '2 Vendor Log File', fileSize: 0, targetFileName: '' },
    ]);
  });

  it('Fault 9005', () => {
    const e = parseFixture('fault-9005.xml');
    assert.equal(e.ns, '1-2');
    assert.equal(e.id, '300');
    assert.deepEqual(bodyOf(e, 'Fault'), {
      method: 'Fault',
      faultCode: 'Client',
      faultString: 'CWMP fault',
      code: 9005,
      message: 'Invalid parameter name',
      setParameterValuesFaults: [],
    });
  });

  it('Fault 9003 with SetParameterValuesFault entries (prefixed faultcode)', () => {
    const f = bodyOf(parseFixture('fault-9003-spv.xml'), 'Fault');
    assert.equal(f.faultCode, 'Client');
    assert.equal(f.code, 9003);
    assert.equal(f.message, 'Invalid arguments');
    assert.deepEqual(f.setParameterValuesFaults, [
      { parameterName: 'Device.WiFi.SSID.1.SSID', faultCode: 9007, faultString: 'Invalid parameter value' },
      { parameterName: 'Device.DeviceInfo.UpTime', faultCode: 9008, faultString: 'Attempt to set a non-writable parameter' },
      { parameterName: 'Device.WiFi.Radio.1.Channel', faultCode: 9006, faultString: '' },
    ]);
  });

  it('empty Body (<Body/>) gives body null and keeps the header', () => {
    assert.deepEqual(parseFixture('empty-body.xml'), { ns: '1-2', id: 'end-1', body: null });
  });
});

// ------------------------------------------------------------------------------------------------

describe('cwmp codec: tolerant parsing', () => {
  const gpv = '<cwmp:GetParameterValues><ParameterNames><string>Device.</string></ParameterNames></cwmp:GetParameterValues>';

  it('is synchronous (returns the value, no promise)', () => {
    const r: unknown = parseEnvelope(env(gpv));
    assert.ok(r && typeof r === 'object' && !(r instanceof Promise));
    assert.equal((r as Envelope).body?.method, 'GetParameterValues');
  });

  for (const v of ['1-0', '1-1', '1-2', '1-3', '1-4'] as const) {
    it(`accepts urn:dslforum-org:cwmp-${v} and reports ns ${v}`, () => {
      assert.equal(parseEnvelope(env(gpv, { ns: `urn:dslforum-org:cwmp-${v}` })).ns, v);
    });
  }

  for (const [envPfx, rpcPfx] of [
    ['soap', 'cwmp'],
    ['SOAP-ENV', 'ns'],
    ['soapenv', 'ns1'],
    ['s', 'c'],
    ['S', 'CWMP'],
  ]) {
    it(`accepts prefixes ${envPfx}: / ${rpcPfx}:`, () => {
      const xml =
        `<${envPfx}:Envelope xmlns:${envPfx}="${SOAP}" xmlns:${rpcPfx}="urn:dslforum-org:cwmp-1-3">` +
        `<${envPfx}:Header><${rpcPfx}:ID ${envPfx}:mustUnderstand="1">x</${rpcPfx}:ID></${envPfx}:Header>` +
        `<${envPfx}:Body><${rpcPfx}:Reboot><CommandKey>k</CommandKey></${rpcPfx}:Reboot></${envPfx}:Body></${envPfx}:Envelope>`;
      assert.deepEqual(parseEnvelope(xml), { ns: '1-3', id: 'x', body: { method: 'Reboot', commandKey: 'k' } });
    });
  }

  it('accepts a default namespace on the Envelope and qualified arguments', () => {
    const xml =
      `<Envelope xmlns="${SOAP}"><Body><c:AddObject xmlns:c="urn:dslforum-org:cwmp-1-2">` +
      '<c:ObjectName>Device.NAT.PortMapping.</c:ObjectName><c:ParameterKey>pk</c:ParameterKey></c:AddObject></Body></Envelope>';
    assert.deepEqual(parseEnvelope(xml), {
      ns: '1-2',
      body: { method: 'AddObject', objectName: 'Device.NAT.PortMapping.', parameterKey: 'pk' },
    });
  });

  it('resolves a prefix redeclared on an inner element', () => {
    const xml =
      `<soap:Envelope xmlns:soap="${SOAP}" xmlns:cwmp="urn:example:other"><soap:Body>` +
      '<cwmp:FactoryReset xmlns:cwmp="urn:dslforum-org:cwmp-1-4"/></soap:Body></soap:Envelope>';
    assert.deepEqual(parseEnvelope(xml).body, { method: 'FactoryReset' });
  });

  it('reads mixed-case and numeric booleans, padded numbers', () => {
    for (const [text, expected] of [
      ['true', true],
      ['TRUE', true],
      ['True', true],
      ['1', true],
      [' 1 ', true],
      ['false', false],
      ['FALSE', false],
      ['0', false],
      ['', false],
    ] as const) {
      const m = parseEnvelope(env(`<cwmp:GetParameterNames><ParameterPath>Device.</ParameterPath><NextLevel>${text}</NextLevel></cwmp:GetParameterNames>`)).body;
      assert.deepEqual(m, { method: 'GetParameterNames', parameterPath: 'Device.', nextLevel: expected }, text);
    }
    const s = parseEnvelope(env('<cwmp:ScheduleInform><DelaySeconds>\n  300\n</DelaySeconds><CommandKey> sk </CommandKey></cwmp:ScheduleInform>')).body;
    assert.deepEqual(s, { method: 'ScheduleInform', delaySeconds: 300, commandKey: 'sk' });
  });

  it('reads HoldRequests, UseCWMPVersion and ignores NoMoreRequests / unknown headers', () => {
    const e = parseEnvelope(
      env('<cwmp:GetRPCMethods/>', {
        header:
          ID_HEADER +
          '<cwmp:HoldRequests soap:mustUnderstand="1">TRUE</cwmp:HoldRequests><cwmp:NoMoreRequests>1</cwmp:NoMoreRequests>' +
          '<cwmp:UseCWMPVersion soap:mustUnderstand="1">1.4</cwmp:UseCWMPVersion><x:Other xmlns:x="urn:x">?</x:Other>',
      }),
    );
    assert.deepEqual(e, { ns: '1-0', id: 'id-77', holdRequests: true, useCWMPVersion: '1.4', body: { method: 'GetRPCMethods' } });
  });

  it('treats empty HoldRequests / SessionTimeout headers as absent', () => {
    const e = parseEnvelope(env('', { header: '<cwmp:HoldRequests/><cwmp:SessionTimeout> </cwmp:SessionTimeout>' }));
    assert.deepEqual(e, { ns: '1-0', body: null });
  });

  it('keeps the cwmp:ID exactly as sent', () => {
    assert.equal(parseEnvelope(env('', { header: '<cwmp:ID soap:mustUnderstand="1"> a b </cwmp:ID>' })).id, ' a b ');
    assert.equal(parseEnvelope(env('', { header: '<cwmp:ID soap:mustUnderstand="1"/>' })).id, '');
  });

  it('takes ns from the cwmp:ID header when the body is empty', () => {
    const xml =
      `<soap:Envelope xmlns:soap="${SOAP}"><soap:Header><c:ID xmlns:c="urn:dslforum-org:cwmp-1-3" soap:mustUnderstand="1">9</c:ID>` +
      '</soap:Header><soap:Body/></soap:Envelope>';
    assert.deepEqual(parseEnvelope(xml), { ns: '1-3', id: '9', body: null });
    assert.equal(parseEnvelope(env('', { ns: 'urn:dslforum-org:cwmp-1-4' })).ns, '1-4');
  });

  it('accepts whitespace-only and comment-only bodies as empty', () => {
    assert.equal(parseEnvelope(env('\n   \n')).body, null);
    assert.equal(parseEnvelope(env('<!-- nothing -->')).body, null);
  });

  it('tolerates BOM, leading whitespace, comments, processing instructions', () => {
    const xml = '\ufeff\n  <?xml version="1.0" encoding="UTF-8"?>\n<!-- hi -->\n' + env('<cwmp:RebootResponse/>');
    assert.deepEqual(parseEnvelope(xml).body, { method: 'RebootResponse' });
  });

  it('ignores unknown extra elements and extra Body children after the RPC', () => {
    const xml = env('<cwmp:Reboot><Junk>1</Junk><CommandKey>r1</CommandKey><More/></cwmp:Reboot><cwmp:Extra/>');
    assert.deepEqual(parseEnvelope(xml).body, { method: 'Reboot', commandKey: 'r1' });
  });

  it('accepts arrays whose items have unexpected names, and many items', () => {
    const items = Array.from({ length: 500 }, (_, i) => `<EventStruct><EventCode>X 00D09E E${i}</EventCode><CommandKey/></EventStruct>`).join('');
    const xml = env(
      `<cwmp:Inform><DeviceId><OUI>00D09E</OUI><SerialNumber>1</SerialNumber></DeviceId><Event>${items}</Event>` +
        '<ParameterList><item><Name>a</Name><Value>b</Value></item></ParameterList></cwmp:Inform>',
    );
    const m = parseEnvelope(xml).body as Inform;
    assert.equal(m.events.length, 500);
    assert.equal(m.events[499].eventCode, 'X 00D09E E499');
    assert.deepEqual(m.parameterList, [{ name: 'a', value: 'b', type: '' }]);
    assert.equal(m.maxEnvelopes, 1, 'absent MaxEnvelopes defaults to 1');
    assert.equal(m.retryCount, 0);
    assert.deepEqual(m.deviceId, { manufacturer: '', oui: '00D09E', productClass: '', serialNumber: '1' });
  });

  it('reads SOAP-encoded wrappers for DU Results and Operations', () => {
    const res =
      '<UUID>u</UUID><DeploymentUnitRef>r</DeploymentUnitRef><Version>1</Version><CurrentState>Installed</CurrentState>' +
      '<Resolved>true</Resolved><ExecutionUnitRefList/><StartTime>s</StartTime><CompleteTime>c</CompleteTime>' +
      '<Fault><FaultCode>0</FaultCode><FaultString/></Fault>';
    const du = parseEnvelope(
      env(`<cwmp:DUStateChangeComplete><Results soap-enc:arrayType="cwmp:OpResultStruct[2]"><OpResultStruct>${res}</OpResultStruct>` +
        `<OpResultStruct>${res}</OpResultStruct></Results><CommandKey>k</CommandKey></cwmp:DUStateChangeComplete>`),
    ).body;
    assert.equal(du?.method, 'DUStateChangeComplete');
    assert.equal(du?.method === 'DUStateChangeComplete' && du.results.length, 2);

    const cdu = parseEnvelope(
      env('<cwmp:ChangeDUState><Operations><InstallOpStruct><URL>http://x/a.ipk</URL></InstallOpStruct>' +
        '<UninstallOpStruct><UUID>u2</UUID></UninstallOpStruct>' +
        '<Op xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="cwmp:UpdateOpStruct"><UUID>u3</UUID></Op></Operations>' +
        '<CommandKey>ck</CommandKey></cwmp:ChangeDUState>'),
    ).body;
    assert.deepEqual(cdu, {
      method: 'ChangeDUState',
      commandKey: 'ck',
      operations: [
        { op: 'Install', url: 'http://x/a.ipk', uuid: '', username: '', password: '', executionEnvRef: '' },
        { op: 'Uninstall', uuid: 'u2', version: '', executionEnvRef: '' },
        { op: 'Update', uuid: 'u3', version: '', url: '', username: '', password: '' },
      ],
    });
  });

  it('reads a SOAP fault without detail, and Server/Receiver/odd faultcodes', () => {
    const noDetail = parseEnvelope(env('<soap:Fault><faultcode>soap:Server</faultcode><faultstring>boom</faultstring></soap:Fault>'));
    assert.deepEqual(noDetail.body, {
      method: 'Fault',
      faultCode: 'Server',
      faultString: 'boom',
      code: 0,
      message: 'boom',
      setParameterValuesFaults: [],
    });
    const odd = parseEnvelope(
      env('<soap:Fault><faultcode>soap:MustUnderstand</faultcode><faultstring>x</faultstring><detail><cwmp:Fault><FaultCode>9005</FaultCode></cwmp:Fault></detail></soap:Fault>'),
    ).body as SoapFault;
    assert.equal(odd.faultCode, 'Client', 'falls back to the CWMP code classification');
    assert.equal(odd.message, '');
    const recv = parseEnvelope(env('<soap:Fault><faultcode>Receiver</faultcode><faultstring/></soap:Fault>')).body as SoapFault;
    assert.equal(recv.faultCode, 'Server');
  });

  it('takes a Fault envelope ns from the detail cwmp:Fault element', () => {
    const xml =
      `<soap:Envelope xmlns:soap="${SOAP}"><soap:Body><soap:Fault><faultcode>Client</faultcode><faultstring>CWMP fault</faultstring>` +
      '<detail><c:Fault xmlns:c="urn:dslforum-org:cwmp-1-4"><FaultCode>9000</FaultCode><FaultString>Method not supported</FaultString></c:Fault></detail>' +
      '</soap:Fault></soap:Body></soap:Envelope>';
    const e = parseEnvelope(xml);
    assert.equal(e.ns, '1-4');
    assert.equal((e.body as SoapFault).code, 9000);
  });
});

// ------------------------------------------------------------------------------------------------

describe('cwmp codec: hostile and invalid input', () => {
  it('refuses the empty string and whitespace', () => {
    const err = assertParseError(() => parseEnvelope(''), 8003, /empty document/);
    assert.equal(err.httpStatus, 400);
    assertParseError(() => parseEnvelope('  \r\n\t '), 8003, /empty document/);
  });

  it('refuses malformed XML with the parser message', () => {
    const err = assertParseError(() => parseEnvelope(env('<cwmp:Reboot><CommandKey>x</cwmp:Reboot>')), 8003, /^Malformed XML: .*Unexpected close tag/);
    assert.equal(err.httpStatus, 400);
    assert.ok(!err.message.includes('\n'), 'message is one line');
    assertParseError(() => parseEnvelope(env('<cwmp:Reboot>').replace('</soap:Envelope>', '')), 8003, /^Malformed XML/);
    assertParseError(() => parseEnvelope(env('<a b=c/>')), 8003, /^Malformed XML/);
    assertParseError(() => parseEnvelope(env('<x>&unknown;</x>')), 8003, /^Malformed XML: .*entity/i);
    assertParseError(() => parseEnvelope(env('') + '<second/>'), 8003, /^Malformed XML: content after the root element/);
    assertParseError(() => parseEnvelope(env('') + 'trailing text'), 8003, /^Malformed XML/);
  });

  it('does not let one malformed document corrupt the next parse', () => {
    assertParseError(() => parseEnvelope(env('') + 'garbage'), 8003, /Malformed XML/);
    assertParseError(() => parseEnvelope(env('<cwmp:Reboot><CommandKey></cwmp:Reboot>')), 8003, /Malformed XML/);
    assert.deepEqual(parseEnvelope(env('<cwmp:RebootResponse/>')).body, { method: 'RebootResponse' });
  });

  it('refuses DOCTYPE with entities (billion laughs)', () => {
    const lol =
      '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">\n' +
      ' <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">\n]>\n' +
      env('<cwmp:Kicked><Arg>&lol2;</Arg></cwmp:Kicked>');
    const err = assertParseError(() => parseEnvelope(lol), 8003, /^DOCTYPE\/entity declarations are not allowed$/);
    assert.equal(err.httpStatus, 400);
  });

  it('refuses external entities, lower-case doctype, and DOCTYPE after BOM/whitespace/comments', () => {
    const xxe = '<?xml version="1.0"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>' + env('<cwmp:Kicked><Arg>&xxe;</Arg></cwmp:Kicked>');
    assertParseError(() => parseEnvelope(xxe), 8003, /DOCTYPE\/entity declarations are not allowed/);
    assertParseError(() => parseEnvelope('\ufeff  <!-- c --><!doctype x>' + env('')), 8003, /DOCTYPE\/entity/);
    assertParseError(() => parseEnvelope(env('<!ENTITY x "y">')), 8003, /DOCTYPE\/entity/);
  });

  it('refuses a wrong SOAP namespace, SOAP 1.2, and non-SOAP roots', () => {
    const wrong = env('<cwmp:GetRPCMethods/>').replace(SOAP, 'http://example.com/soap/');
    const e1 = assertParseError(() => parseEnvelope(wrong), 8003, /Not a SOAP 1\.1 envelope: Envelope namespace is "http:\/\/example\.com\/soap\/"/);
    assert.equal(e1.httpStatus, 400);
    const soap12 = env('<cwmp:GetRPCMethods/>').replace(SOAP, 'http://www.w3.org/2003/05/soap-envelope');
    assertParseError(() => parseEnvelope(soap12), 8003, /SOAP 1\.2 envelopes are not supported/);
    assertParseError(() => parseEnvelope('<html><body>hi</body></html>'), 8003, /Not a SOAP envelope: root element is <html>/);
    assertParseError(() => parseEnvelope('<Envelope><Body/></Envelope>'), 8003, /Envelope namespace is "".*expected http:\/\/schemas\.xmlsoap\.org\/soap\/envelope\//);
  });

  it('refuses a wrong cwmp namespace (cwmp-2-0, other URNs, none), keeping id and method', () => {
    const e1 = assertParseError(
      () => parseEnvelope(env('<cwmp:GetRPCMethods/>', { ns: 'urn:dslforum-org:cwmp-2-0', header: ID_HEADER })),
      8003,
      /Unsupported CWMP namespace "urn:dslforum-org:cwmp-2-0" for GetRPCMethods/,
    );
    assert.equal(e1.id, 'id-77');
    assert.equal(e1.method, 'GetRPCMethods');
    assert.equal(e1.httpStatus, undefined);
    assertParseError(
      () => parseEnvelope(env('<cwmp:Inform/>', { ns: 'urn:broadband-forum-org:cwmp:xmppConnReq-1-0' })),
      8003,
      /Inform is not in a CWMP namespace \(namespace "urn:broadband-forum-org:cwmp:xmppConnReq-1-0"\)/,
    );
    assertParseError(() => parseEnvelope(env('<Inform/>')), 8003, /Inform is not in a CWMP namespace \(namespace none\)/);
    assertParseError(() => parseEnvelope(env('<cwmp:Fault/>', { ns: SOAP.replace('envelope', 'x') })), 8003, /not in a CWMP namespace/);
  });

  it('refuses a missing Body', () => {
    const xml = `<soap:Envelope xmlns:soap="${SOAP}" xmlns:cwmp="urn:dslforum-org:cwmp-1-0"><soap:Header>${ID_HEADER}</soap:Header></soap:Envelope>`;
    const err = assertParseError(() => parseEnvelope(xml), 8003, /SOAP Body missing/);
    assert.equal(err.id, 'id-77');
    assert.equal(err.httpStatus, 400);
  });

  it('refuses an Inform without DeviceId, OUI or SerialNumber, naming the field', () => {
    const rest = '<Event/><MaxEnvelopes>1</MaxEnvelopes><CurrentTime/><RetryCount>0</RetryCount><ParameterList/>';
    const e1 = assertParseError(() => parseEnvelope(env(`<cwmp:Inform>${rest}</cwmp:Inform>`, { header: ID_HEADER })), 8003, /Inform\/DeviceId missing/);
    assert.equal(e1.id, 'id-77');
    assert.equal(e1.method, 'Inform');
    assertParseError(
      () => parseEnvelope(env(`<cwmp:Inform><DeviceId><SerialNumber>1</SerialNumber></DeviceId>${rest}</cwmp:Inform>`)),
      8003,
      /Inform\/DeviceId\/OUI missing/,
    );
    assertParseError(
      () => parseEnvelope(env(`<cwmp:Inform><DeviceId><OUI>001122</OUI><SerialNumber>  </SerialNumber></DeviceId>${rest}</cwmp:Inform>`)),
      8003,
      /Inform\/DeviceId\/SerialNumber missing/,
    );
  });

  it('refuses non-numeric numbers and non-boolean booleans, naming the field', () => {
    const inform = (max: string) =>
      env(`<cwmp:Inform><DeviceId><OUI>001122</OUI><SerialNumber>1</SerialNumber></DeviceId><MaxEnvelopes>${max}</MaxEnvelopes></cwmp:Inform>`, {
        header: ID_HEADER,
      });
    const e1 = assertParseError(() => parseEnvelope(inform('abc')), 8003, /Inform\/MaxEnvelopes is not an integer: "abc"/);
    assert.equal(e1.id, 'id-77');
    assertParseError(() => parseEnvelope(inform('1.5')), 8003, /MaxEnvelopes is not an integer/);
    assertParseError(() => parseEnvelope(inform('0x10')), 8003, /MaxEnvelopes is not an integer/);
    assertParseError(
      () => parseEnvelope(env('<cwmp:SetParameterValuesResponse><Status>ok</Status></cwmp:SetParameterValuesResponse>')),
      8003,
      /SetParameterValuesResponse\/Status is not an integer: "ok"/,
    );
    assertParseError(
      () => parseEnvelope(env('<soap:Fault><faultcode>Client</faultcode><detail><cwmp:Fault><FaultCode>NaN</FaultCode></cwmp:Fault></detail></soap:Fault>')),
      8003,
      /Fault\/detail\/Fault\/FaultCode is not an integer/,
    );
    assertParseError(
      () => parseEnvelope(env('<cwmp:GetParameterNames><ParameterPath/><NextLevel>yes</NextLevel></cwmp:GetParameterNames>')),
      8003,
      /GetParameterNames\/NextLevel is not a boolean: "yes"/,
    );
    assertParseError(() => parseEnvelope(env('', { header: '<cwmp:SessionTimeout>soon</cwmp:SessionTimeout>' })), 8003, /Header\/SessionTimeout is not an integer/);
    assertParseError(() => parseEnvelope(env('', { header: '<cwmp:HoldRequests>maybe</cwmp:HoldRequests>' })), 8003, /Header\/HoldRequests is not a boolean/);
  });

  it('answers an unknown method with 8000, keeping the id and method name', () => {
    const err = assertParseError(() => parseEnvelope(env('<cwmp:SetVouchers><VoucherList/></cwmp:SetVouchers>', { header: ID_HEADER })), 8000, /Method not supported: SetVouchers/);
    assert.equal(err.id, 'id-77');
    assert.equal(err.method, 'SetVouchers');
    assert.equal(err.httpStatus, undefined);
    for (const name of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
      const e = assertParseError(() => parseEnvelope(env(`<cwmp:${name}/>`)), 8000, /Method not supported/);
      assert.equal(e.method, name);
    }
  });

  it('survives 10 MB of nested elements quickly', function () {
    this.timeout(10000);
    const size = 10 * 1024 * 1024;
    const open = env('<a>'.repeat(size / 3));
    const t0 = Date.now();
    assertParseError(() => parseEnvelope(open), 8003, /Malformed XML: elements nested deeper than 64 levels/);
    const closed = env('<a>'.repeat(size / 7) + '</a>'.repeat(size / 7));
    assertParseError(() => parseEnvelope(closed), 8003, /nested deeper/);
    assert.ok(Date.now() - t0 < 2000, `took ${Date.now() - t0} ms`);
  });

  it('survives a large flat document', function () {
    this.timeout(20000);
    const n = 20000;
    const list = '<ParameterValueStruct><Name>x</Name><Value>y</Value></ParameterValueStruct>'.repeat(n);
    const m = parseEnvelope(env(`<cwmp:GetParameterValuesResponse><ParameterList>${list}</ParameterList></cwmp:GetParameterValuesResponse>`)).body;
    assert.equal(m?.method === 'GetParameterValuesResponse' && m.parameterList.length, n);
  });

  it('refuses binary garbage', () => {
    let seed = 12345;
    const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) & 0xff;
    for (let round = 0; round < 20; round++) {
      let s = '';
      for (let i = 0; i < 4096; i++) s += String.fromCharCode(rnd());
      if (round % 2) s = '<' + s; // sometimes start like a tag
      const err = assertParseError(() => parseEnvelope(s), 8003, /^(Malformed XML|Not a SOAP|DOCTYPE)/);
      assert.ok(err.message.length < 400);
    }
    assertParseError(() => parseEnvelope('\u0000\u0001\u0002'), 8003, /^Malformed XML/);
  });

  it('only ever throws CwmpParseError, even for non-string input', () => {
    for (const bad of [undefined, null, 42, {}, Buffer.from('<a/>')]) {
      assertParseError(() => parseEnvelope(bad as unknown as string), 8003, /not a string/);
    }
  });
});

// ------------------------------------------------------------------------------------------------

/** One sample per message type; the Record makes the compiler require every method name. */
const SAMPLES: { [M in CwmpMessage['method']]: Extract<CwmpMessage, { method: M }> } = {
  Inform: {
    method: 'Inform',
    deviceId: { manufacturer: 'A&B <Telecom>', oui: '00D09E', productClass: 'Box "X"', serialNumber: "SN'1" },
    events: [
      { eventCode: '0 BOOTSTRAP', commandKey: '' },
      { eventCode: 'M Download', commandKey: 'ck&1' },
    ],
    maxEnvelopes: 1,
    currentTime: '2024-03-18T08:15:02Z',
    retryCount: 7,
    parameterList: [
      { name: 'Device.DeviceInfo.SoftwareVersion', value: '1.2 <beta>', type: 'xsd:string' },
      { name: 'Device.DeviceInfo.UpTime', value: '4294967295', type: 'xsd:unsignedInt' },
      { name: 'Device.X_ACME_Emoji', value: 'wifi 📶 ok', type: 'xsd:string' },
    ],
  },
  TransferComplete: {
    method: 'TransferComplete',
    commandKey: 'dl-1',
    fault: { faultCode: 9010, faultString: 'HTTP 404' },
    startTime: '2024-01-01T00:00:00Z',
    completeTime: '2024-01-01T00:01:00Z',
  },
  AutonomousTransferComplete: {
    method: 'AutonomousTransferComplete',
    announceURL: 'http://a/',
    transferURL: 'http://t/f?x=1&y=2',
    isDownload: false,
    fileType: '2 Vendor Log File',
    fileSize: 1234,
    targetFileName: 'log.txt',
    fault: { faultCode: 0, faultString: '' },
    startTime: '0001-01-01T00:00:00Z',
    completeTime: '0001-01-01T00:00:00Z',
  },
  GetRPCMethods: { method: 'GetRPCMethods' },
  RequestDownload: { method: 'RequestDownload', fileType: '3 Vendor Configuration File', fileTypeArg: [{ name: 'Version', value: '2' }] },
  Kicked: { method: 'Kicked', command: 'c', referer: 'r', arg: 'a=1&b=2', next: 'http://n/' },
  DUStateChangeComplete: {
    method: 'DUStateChangeComplete',
    commandKey: 'du',
    results: [
      {
        uuid: '3f2504e0-4f89-11d3-9a0c-0305e82c3301',
        deploymentUnitRef: 'Device.SoftwareModules.DeploymentUnit.2',
        version: '2.0',
        currentState: 'Installed',
        resolved: true,
        executionUnitRefList: 'Device.SoftwareModules.ExecutionUnit.3,Device.SoftwareModules.ExecutionUnit.4',
        startTime: '2024-01-01T00:00:00Z',
        completeTime: '2024-01-01T00:00:09Z',
        fault: { faultCode: 0, faultString: '' },
      },
    ],
  },
  AutonomousDUStateChangeComplete: {
    method: 'AutonomousDUStateChangeComplete',
    results: [
      {
        uuid: 'u',
        deploymentUnitRef: 'r',
        version: 'v',
        currentState: 'Uninstalled',
        resolved: false,
        executionUnitRefList: '',
        startTime: 's',
        completeTime: 'c',
        fault: { faultCode: 9028, faultString: 'Unknown Deployment Unit' },
        operationPerformed: 'Uninstall',
      },
    ],
  },
  InformResponse: { method: 'InformResponse', maxEnvelopes: 1 },
  TransferCompleteResponse: { method: 'TransferCompleteResponse' },
  AutonomousTransferCompleteResponse: { method: 'AutonomousTransferCompleteResponse' },
  GetRPCMethodsResponse: { method: 'GetRPCMethodsResponse', methodList: ['Inform', 'GetRPCMethods', 'TransferComplete'] },
  RequestDownloadResponse: { method: 'RequestDownloadResponse' },
  KickedResponse: { method: 'KickedResponse', nextURL: 'http://portal/next?a=1&b=2' },
  DUStateChangeCompleteResponse: { method: 'DUStateChangeCompleteResponse' },
  AutonomousDUStateChangeCompleteResponse: { method: 'AutonomousDUStateChangeCompleteResponse' },
  GetParameterNames: { method: 'GetParameterNames', parameterPath: 'Device.WiFi.', nextLevel: true },
  GetParameterValues: { method: 'GetParameterValues', parameterNames: ['Device.DeviceInfo.', 'Device.WiFi.SSID.1.SSID'] },
  SetParameterValues: {
    method: 'SetParameterValues',
    parameterList: [
      { name: 'Device.WiFi.SSID.1.SSID', value: 'Home & <Garden>', type: 'xsd:string' },
      { name: 'Device.WiFi.Radio.1.Enable', value: 'true', type: 'xsd:boolean' },
      { name: 'Device.ManagementServer.PeriodicInformInterval', value: '3600', type: 'xsd:unsignedInt' },
    ],
    parameterKey: 'pk-1',
  },
  GetParameterAttributes: { method: 'GetParameterAttributes', parameterNames: ['Device.DeviceInfo.SoftwareVersion'] },
  SetParameterAttributes: {
    method: 'SetParameterAttributes',
    parameterList: [
      { name: 'Device.DeviceInfo.SoftwareVersion', notificationChange: true, notification: 2, accessListChange: false, accessList: [] },
      { name: 'Device.WiFi.', notificationChange: false, notification: 0, accessListChange: true, accessList: ['Subscriber'] },
    ],
  },
  AddObject: { method: 'AddObject', objectName: 'Device.NAT.PortMapping.', parameterKey: 'pk' },
  DeleteObject: { method: 'DeleteObject', objectName: 'Device.NAT.PortMapping.3.', parameterKey: '' },
  Reboot: { method: 'Reboot', commandKey: 'reboot-1' },
  FactoryReset: { method: 'FactoryReset' },
  Download: {
    method: 'Download',
    commandKey: 'fw',
    fileType: '1 Firmware Upgrade Image',
    url: 'https://files.example.net/fw.bin?token=a&b=c',
    username: 'user',
    password: 'p<a>ss',
    fileSize: 31457280,
    targetFileName: 'fw.bin',
    delaySeconds: 0,
    successURL: '',
    failureURL: '',
  },
  Upload: {
    method: 'Upload',
    commandKey: 'log',
    fileType: '2 Vendor Log File',
    url: 'http://up/',
    username: '',
    password: '',
    delaySeconds: 10,
  },
  ScheduleInform: { method: 'ScheduleInform', delaySeconds: 60, commandKey: 'si' },
  ScheduleDownload: {
    method: 'ScheduleDownload',
    commandKey: 'sd',
    fileType: '1 Firmware Upgrade Image',
    url: 'http://f/',
    username: 'u',
    password: 'p',
    fileSize: 100,
    targetFileName: 't',
    timeWindowList: [
      { windowStart: 0, windowEnd: 3600, windowMode: '1 At Any Time', userMessage: '', maxRetries: -1 },
      { windowStart: 7200, windowEnd: 10800, windowMode: '4 Confirmation Needed', userMessage: 'Update?', maxRetries: 3 },
    ],
  },
  CancelTransfer: { method: 'CancelTransfer', commandKey: 'fw' },
  GetQueuedTransfers: { method: 'GetQueuedTransfers' },
  GetAllQueuedTransfers: { method: 'GetAllQueuedTransfers' },
  ChangeDUState: {
    method: 'ChangeDUState',
    commandKey: 'cdu',
    operations: [
      { op: 'Install', url: 'http://x/a.ipk', uuid: '3f2504e0-4f89-11d3-9a0c-0305e82c3301', username: 'u', password: 'p', executionEnvRef: 'Device.SoftwareModules.ExecEnv.1' },
      { op: 'Update', uuid: 'u2', version: '2.0', url: 'http://x/b.ipk', username: '', password: '' },
      { op: 'Uninstall', uuid: 'u3', version: '', executionEnvRef: '' },
    ],
  },
  GetParameterNamesResponse: {
    method: 'GetParameterNamesResponse',
    parameterList: [
      { name: 'Device.WiFi.', writable: false },
      { name: 'Device.WiFi.SSID.1.SSID', writable: true },
    ],
  },
  GetParameterValuesResponse: {
    method: 'GetParameterValuesResponse',
    parameterList: [{ name: 'Device.DeviceInfo.UpTime', value: '12', type: 'xsd:unsignedInt' }],
  },
  SetParameterValuesResponse: { method: 'SetParameterValuesResponse', status: 0 },
  GetParameterAttributesResponse: {
    method: 'GetParameterAttributesResponse',
    parameterList: [{ name: 'Device.DeviceInfo.SoftwareVersion', notification: 2, accessList: ['Subscriber'] }],
  },
  SetParameterAttributesResponse: { method: 'SetParameterAttributesResponse' },
  AddObjectResponse: { method: 'AddObjectResponse', instanceNumber: 4, status: 0 },
  DeleteObjectResponse: { method: 'DeleteObjectResponse', status: 1 },
  RebootResponse: { method: 'RebootResponse' },
  FactoryResetResponse: { method: 'FactoryResetResponse' },
  DownloadResponse: { method: 'DownloadResponse', status: 1, startTime: '0001-01-01T00:00:00Z', completeTime: '0001-01-01T00:00:00Z' },
  UploadResponse: { method: 'UploadResponse', status: 0, startTime: '2024-01-01T00:00:00Z', completeTime: '2024-01-01T00:00:01Z' },
  ScheduleInformResponse: { method: 'ScheduleInformResponse' },
  ScheduleDownloadResponse: { method: 'ScheduleDownloadResponse' },
  CancelTransferResponse: { method: 'CancelTransferResponse' },
  GetQueuedTransfersResponse: {
    method: 'GetQueuedTransfersResponse',
    transferList: [
      { commandKey: 'a', state: 1 },
      { commandKey: 'b', state: 2 },
    ],
  },
  GetAllQueuedTransfersResponse: {
    method: 'GetAllQueuedTransfersResponse',
    transferList: [{ commandKey: 'a', state: 3, isDownload: true, fileType: '1 Firmware Upgrade Image', fileSize: 5, targetFileName: 'f' }],
  },
  ChangeDUStateResponse: { method: 'ChangeDUStateResponse' },
  Fault: makeFault(9003, 'Invalid arguments', [
    { parameterName: 'Device.WiFi.SSID.1.SSID', faultCode: 9007, faultString: 'too long' },
    { parameterName: 'Device.DeviceInfo.UpTime', faultCode: 9008, faultString: '' },
  ]),
};

/** Extra variants of the same methods (empty lists, other branches). */
const EXTRA_SAMPLES: CwmpMessage[] = [
  { ...SAMPLES.Inform, events: [], parameterList: [] },
  { method: 'GetParameterValues', parameterNames: [] },
  { method: 'GetParameterNames', parameterPath: '', nextLevel: false },
  { method: 'GetRPCMethodsResponse', methodList: [] },
  { method: 'ChangeDUState', commandKey: '', operations: [{ op: 'Install', url: 'http://x/', uuid: '', username: '', password: '', executionEnvRef: '' }] },
  makeFault(8005),
  makeFault(9805, 'vendor thing'),
];

const ENVELOPE_VARIANTS: Omit<Envelope, 'ns' | 'body'>[] = [
  {},
  { id: 'abc-123' },
  { id: '' },
  { id: 'x&<y>', holdRequests: false, sessionTimeout: 30, supportedCWMPVersions: '1.0,1.1,1.2,1.3,1.4', useCWMPVersion: '1.4' },
  { holdRequests: true },
];

describe('cwmp codec: round trip', () => {
  for (const ns of ['1-0', '1-4'] as CwmpNsVersion[]) {
    for (const msg of [...Object.values(SAMPLES), ...EXTRA_SAMPLES] as CwmpMessage[]) {
      it(`${msg.method} in cwmp-${ns}`, () => {
        for (const extra of ENVELOPE_VARIANTS) {
          const e: Envelope = { ns, ...extra, body: msg };
          const xml = buildEnvelope(e);
          assert.deepStrictEqual(parseEnvelope(xml), e);
        }
      });
    }
    it(`empty body in cwmp-${ns}`, () => {
      for (const extra of ENVELOPE_VARIANTS) {
        const e: Envelope = { ns, ...extra, body: null };
        assert.deepStrictEqual(parseEnvelope(buildEnvelope(e)), e);
      }
    });
  }

  it('covers every method name in the type union', () => {
    const names = Object.keys(SAMPLES);
    assert.equal(names.length, new Set(names).size);
    assert.ok(names.length >= 50, `${names.length} samples`);
  });
});

// ------------------------------------------------------------------------------------------------

describe('cwmp codec: building', () => {
  it('writes the XML declaration, envelope namespaces, ID header and unqualified arguments', () => {
    const xml = buildEnvelope({ ns: '1-2', id: '42', body: { method: 'InformResponse', maxEnvelopes: 1 } });
    assert.ok(xml.startsWith('<?xml version="1.0" encoding="UTF-8"?>'));
    for (const decl of [
      'xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/"',
      'xmlns:soap-enc="http://schemas.xmlsoap.org/soap/encoding/"',
      'xmlns:xsd="http://www.w3.org/2001/XMLSchema"',
      'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"',
      'xmlns:cwmp="urn:dslforum-org:cwmp-1-2"',
    ]) {
      assert.ok(xml.includes(decl), decl);
    }
    assert.ok(xml.includes('<soap-env:Header><cwmp:ID soap-env:mustUnderstand="1">42</cwmp:ID></soap-env:Header>'));
    assert.ok(xml.includes('<soap-env:Body><cwmp:InformResponse><MaxEnvelopes>1</MaxEnvelopes></cwmp:InformResponse></soap-env:Body>'));
  });

  it('omits the Header when there is nothing to put in it; empty body is an empty Body', () => {
    const xml = buildEnvelope({ ns: '1-0', body: null });
    assert.ok(!xml.includes('Header'));
    assert.ok(xml.endsWith('<soap-env:Body></soap-env:Body></soap-env:Envelope>'));
  });

  it('writes header flags with the mustUnderstand values the XSDs require', () => {
    const xml = buildEnvelope({ ns: '1-4', id: '1', holdRequests: true, sessionTimeout: 30, supportedCWMPVersions: '1.0,1.4', useCWMPVersion: '1.4', body: null });
    assert.ok(xml.includes('<cwmp:HoldRequests soap-env:mustUnderstand="1">1</cwmp:HoldRequests>'));
    assert.ok(xml.includes('<cwmp:SessionTimeout soap-env:mustUnderstand="0">30</cwmp:SessionTimeout>'));
    assert.ok(xml.includes('<cwmp:SupportedCWMPVersions soap-env:mustUnderstand="0">1.0,1.4</cwmp:SupportedCWMPVersions>'));
    assert.ok(xml.includes('<cwmp:UseCWMPVersion soap-env:mustUnderstand="1">1.4</cwmp:UseCWMPVersion>'));
  });

  it('writes arrays with soap-enc:arrayType and typed values (xsd:string default)', () => {
    const xml = buildEnvelope({
      ns: '1-0',
      body: {
        method: 'SetParameterValues',
        parameterList: [
          { name: 'A', value: '1', type: '' },
          { name: 'B', value: '2', type: 'xsd:int' },
        ],
        parameterKey: 'k',
      },
    });
    assert.ok(xml.includes('<ParameterList soap-enc:arrayType="cwmp:ParameterValueStruct[2]">'));
    assert.ok(xml.includes('<ParameterValueStruct><Name>A</Name><Value xsi:type="xsd:string">1</Value></ParameterValueStruct>'));
    assert.ok(xml.includes('<Value xsi:type="xsd:int">2</Value>'));
    assert.ok(xml.includes('</ParameterList><ParameterKey>k</ParameterKey>'), 'TR-069 argument order');
    const gpv = buildEnvelope({ ns: '1-0', body: { method: 'GetParameterValues', parameterNames: ['a', 'b', 'c'] } });
    assert.ok(gpv.includes('<ParameterNames soap-enc:arrayType="xsd:string[3]"><string>a</string><string>b</string><string>c</string></ParameterNames>'));
    const gpn = buildEnvelope({ ns: '1-0', body: { method: 'GetParameterNames', parameterPath: 'Device.', nextLevel: true } });
    assert.ok(gpn.includes('<cwmp:GetParameterNames><ParameterPath>Device.</ParameterPath><NextLevel>1</NextLevel></cwmp:GetParameterNames>'));
  });

  it('writes ChangeDUState operations with xsi:type as the XSD and CPE agents expect', () => {
    const xml = buildEnvelope({ ns: '1-2', body: SAMPLES.ChangeDUState });
    assert.ok(xml.includes('<Operations xsi:type="cwmp:InstallOpStruct"><URL>http://x/a.ipk</URL><UUID>'));
    assert.ok(xml.includes('<Operations xsi:type="cwmp:UninstallOpStruct"><UUID>u3</UUID></Operations><CommandKey>cdu</CommandKey>'));
  });

  it('writes SOAP faults with unqualified faultcode Client/Server and the cwmp detail', () => {
    const xml = buildEnvelope({ ns: '1-0', id: '7', body: makeFault(8005) });
    assert.ok(
      xml.includes(
        '<soap-env:Fault><faultcode>Server</faultcode><faultstring>CWMP fault</faultstring><detail><cwmp:Fault><FaultCode>8005</FaultCode><FaultString>Retry request</FaultString></cwmp:Fault></detail></soap-env:Fault>',
      ),
    );
    assert.ok(buildEnvelope({ ns: '1-0', body: makeFault(8003, 'bad') }).includes('<faultcode>Client</faultcode>'));
  });

  it('escapes markup characters and drops characters XML 1.0 cannot carry', () => {
    assert.equal(escapeXml(`a&b<c>d"e'f`), 'a&amp;b&lt;c&gt;d&quot;e&apos;f');
    assert.equal(escapeXml('plain text'), 'plain text');
    assert.equal(escapeXml('x\u0000y\u0007z\u001f\ufffe\uffff'), 'xyz');
    assert.equal(escapeXml('tab\tlf\ncr\r'), 'tab\tlf\ncr&#13;');
    assert.equal(escapeXml('pair 😀 ok'), 'pair 😀 ok');
    assert.equal(escapeXml('lone \ud800 high, lone \udc00 low, end \ud83d'), 'lone  high, lone  low, end ');
    assert.equal(escapeXml(undefined as unknown as string), '');

    const value = 'a\u0000b&c\r\nd';
    const xml = buildEnvelope({
      ns: '1-0',
      body: { method: 'SetParameterValues', parameterList: [{ name: 'N', value, type: 'xsd:string' }], parameterKey: '' },
    });
    const back = parseEnvelope(xml).body;
    assert.equal(back?.method === 'SetParameterValues' && back.parameterList[0].value, 'ab&c\r\nd');
  });

  it('rejects unknown methods and namespaces (programming errors)', () => {
    assert.throws(() => buildEnvelope({ ns: '2-0' as CwmpNsVersion, body: null }), TypeError);
    assert.throws(() => buildEnvelope({ ns: '1-0', body: { method: 'toString' } as unknown as CwmpMessage }), TypeError);
  });
});
