// The simulated CPE's data model (TR-098 InternetGatewayDevice: or TR-181 Device:2) and the
// parameter RPC handlers on it. Pure: no I/O, no timers. test/support/cpe.ts wraps it in an HTTP
// client.
//
// Lean for fleets: the shared template is compiled once per data model; a CPE's own Map of
// parameters is only built (copied from the template) the first time something needs it (an ACS
// parameter RPC, setLocal, tests reading cpe.params). Until then the Inform is served straight
// from the template plus a handful of per-device identity values.
import type {
  CpeResponse,
  ParameterAttributeStruct,
  ParameterInfoStruct,
  ParameterValueStruct,
  SetParameterAttributesStruct,
  SetParameterValuesFaultStruct,
  SoapFault,
} from '../../cwmp/types';
import { makeFault } from '../../cwmp/faults';

export type DataModelKind = 'tr098' | 'tr181';

export interface CpeParam {
  value: string;
  /** xsi:type as the CPE reports it, e.g. "xsd:unsignedInt". */
  type: string;
  writable: boolean;
  /** 0 off, 1 passive, 2 active. */
  notification: number;
}

/** A parameter given in CpeOptions.params: overrides the template's or adds a new one. */
export interface ParamOverride {
  value: string;
  type: string;
  writable?: boolean;
}

/** Per-device values substituted into the template's `{placeholders}`. */
export interface Identity {
  manufacturer: string;
  oui: string;
  productClass: string;
  serial: string;
  acsUrl: string;
  username: string;
  wanIp: string;
  mac: string;
  crUrl: string;
}

// ---- templates --------------------------------------------------------------------------

const T: Record<string, string> = {
  s: 'xsd:string',
  u: 'xsd:unsignedInt',
  b: 'xsd:boolean',
  i: 'xsd:int',
  d: 'xsd:dateTime',
};
const W = true;
/** [name relative to the root, value, type letter, writable]; a name ending in "." is an (empty) object. */
type Def = [string, string, string, boolean?];

interface TableTemplate {
  /** Table path with {i} for instance numbers of enclosing tables, e.g. "Device.IP.Interface.{i}.IPv4Address.". */
  pattern: string;
  /** Name of the NumberOfEntries counter relative to the table's parent; default <Table>NumberOfEntries. */
  counter?: string;
  children: Def[];
}

interface ModelSpec {
  root: string;
  defs: Def[];
  tables: TableTemplate[];
  /** Parameters always in the Inform ParameterList (relative names). */
  forcedInform: string[];
  /** Forced active notification: notification 2, cannot be lowered (fault 9009). */
  forcedActive: string[];
}

const MGMT: Def[] = [
  ['ManagementServer.URL', '{acsUrl}', 's', W],
  ['ManagementServer.Username', '{username}', 's', W],
  ['ManagementServer.Password', '', 's', W],
  ['ManagementServer.PeriodicInformEnable', 'true', 'b', W],
  ['ManagementServer.PeriodicInformInterval', '3600', 'u', W],
  ['ManagementServer.PeriodicInformTime', '0001-01-01T00:00:00Z', 'd', W],
  ['ManagementServer.ParameterKey', '', 's'],
  ['ManagementServer.ConnectionRequestURL', '{crUrl}', 's'],
  ['ManagementServer.ConnectionRequestUsername', '{serial}', 's', W],
  ['ManagementServer.ConnectionRequestPassword', '', 's', W],
  ['ManagementServer.UpgradesManaged', 'false', 'b', W],
  ['ManagementServer.CWMPRetryMinimumWaitInterval', '5', 'u', W],
  ['ManagementServer.CWMPRetryIntervalMultiplier', '2000', 'u', W],
];

const DEVINFO: Def[] = [
  ['DeviceInfo.Manufacturer', '{manufacturer}', 's'],
  ['DeviceInfo.ManufacturerOUI', '{oui}', 's'],
  ['DeviceInfo.ModelName', '{productClass}', 's'],
  ['DeviceInfo.Description', 'Simulated CPE', 's'],
  ['DeviceInfo.ProductClass', '{productClass}', 's'],
  ['DeviceInfo.SerialNumber', '{serial}', 's'],
  ['DeviceInfo.HardwareVersion', 'HW1.0', 's'],
  ['DeviceInfo.SoftwareVersion', '1.0.0', 's'],
];

const TR098: ModelSpec = {
  root: 'InternetGatewayDevice.',
  defs: [
    ['DeviceSummary', 'InternetGatewayDevice:1.4[](Baseline:2, EthernetLAN:1, WiFiLAN:1, Time:1, IPPing:1)', 's'],
    ['LANDeviceNumberOfEntries', '1', 'u'],
    ['WANDeviceNumberOfEntries', '1', 'u'],
    ...DEVINFO,
    ['DeviceInfo.SpecVersion', '1.0', 's'],
    ['DeviceInfo.ProvisioningCode', '', 's', W],
    ['DeviceInfo.UpTime', '0', 'u'],
    ['DeviceInfo.DeviceLog', '', 's'],
    ...MGMT,
    ['Time.Enable', 'true', 'b', W],
    ['Time.NTPServer1', 'pool.ntp.org', 's', W],
    ['Time.CurrentLocalTime', '{now}', 'd'],
    ['Time.LocalTimeZoneName', 'UTC', 's', W],
    ['LANDevice.1.LANEthernetInterfaceNumberOfEntries', '1', 'u'],
    ['LANDevice.1.LANWLANConfigurationNumberOfEntries', '2', 'u'],
    ['LANDevice.1.LANHostConfigManagement.DHCPServerEnable', 'true', 'b', W],
    ['LANDevice.1.LANHostConfigManagement.MinAddress', '192.168.1.100', 's', W],
    ['LANDevice.1.LANHostConfigManagement.MaxAddress', '192.168.1.199', 's', W],
    ['LANDevice.1.LANHostConfigManagement.SubnetMask', '255.255.255.0', 's', W],
    ['LANDevice.1.LANHostConfigManagement.IPInterfaceNumberOfEntries', '1', 'u'],
    ['LANDevice.1.LANHostConfigManagement.IPInterface.1.Enable', 'true', 'b', W],
    ['LANDevice.1.LANHostConfigManagement.IPInterface.1.IPInterfaceIPAddress', '192.168.1.1', 's', W],
    ['LANDevice.1.LANHostConfigManagement.IPInterface.1.IPInterfaceSubnetMask', '255.255.255.0', 's', W],
    ['LANDevice.1.WLANConfiguration.1.Enable', 'true', 'b', W],
    ['LANDevice.1.WLANConfiguration.1.Status', 'Up', 's'],
    ['LANDevice.1.WLANConfiguration.1.SSID', 'Sim-{serial}', 's', W],
    ['LANDevice.1.WLANConfiguration.1.Channel', '6', 'u', W],
    ['LANDevice.1.WLANConfiguration.1.BeaconType', '11i', 's', W],
    ['LANDevice.1.WLANConfiguration.1.Standard', 'n', 's'],
    ['LANDevice.1.WLANConfiguration.1.KeyPassphrase', '', 's', W],
    ['LANDevice.1.WLANConfiguration.1.TotalAssociations', '1', 'u'],
    ['LANDevice.1.WLANConfiguration.2.Enable', 'true', 'b', W],
    ['LANDevice.1.WLANConfiguration.2.Status', 'Up', 's'],
    ['LANDevice.1.WLANConfiguration.2.SSID', 'Sim-{serial}-5G', 's', W],
    ['LANDevice.1.WLANConfiguration.2.Channel', '36', 'u', W],
    ['LANDevice.1.WLANConfiguration.2.BeaconType', '11i', 's', W],
    ['LANDevice.1.WLANConfiguration.2.Standard', 'ac', 's'],
    ['LANDevice.1.WLANConfiguration.2.KeyPassphrase', '', 's', W],
    ['LANDevice.1.WLANConfiguration.2.TotalAssociations', '0', 'u'],
    ['LANDevice.1.Hosts.HostNumberOfEntries', '1', 'u'],
    ['LANDevice.1.Hosts.Host.1.IPAddress', '192.168.1.100', 's'],
    ['LANDevice.1.Hosts.Host.1.MACAddress', '02:00:00:aa:bb:01', 's'],
    ['LANDevice.1.Hosts.Host.1.HostName', 'laptop', 's'],
    ['LANDevice.1.Hosts.Host.1.Active', 'true', 'b'],
    ['WANDevice.1.WANConnectionNumberOfEntries', '1', 'u'],
    ['WANDevice.1.WANCommonInterfaceConfig.WANAccessType', 'Ethernet', 's'],
    ['WANDevice.1.WANConnectionDevice.1.WANIPConnectionNumberOfEntries', '1', 'u'],
    ['WANDevice.1.WANConnectionDevice.1.WANPPPConnectionNumberOfEntries', '0', 'u'],
    ['WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.Enable', 'true', 'b', W],
    ['WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.ConnectionStatus', 'Connected', 's'],
    ['WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.ConnectionType', 'IP_Routed', 's', W],
    ['WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.Name', 'wan', 's', W],
    ['WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.AddressingType', 'DHCP', 's', W],
    ['WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.ExternalIPAddress', '{wanIp}', 's', W],
    ['WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.SubnetMask', '255.192.0.0', 's', W],
    ['WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.DefaultGateway', '100.64.0.1', 's', W],
    ['WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.DNSServers', '9.9.9.9,1.1.1.1', 's', W],
    ['WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.MACAddress', '{mac}', 's'],
    ['WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.NATEnabled', 'true', 'b', W],
    ['WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.PortMappingNumberOfEntries', '0', 'u'],
    ['WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.PortMapping.', '', ''],
    ['IPPingDiagnostics.DiagnosticsState', 'None', 's', W],
    ['IPPingDiagnostics.Interface', '', 's', W],
    ['IPPingDiagnostics.Host', '', 's', W],
    ['IPPingDiagnostics.NumberOfRepetitions', '4', 'u', W],
    ['IPPingDiagnostics.Timeout', '1000', 'u', W],
    ['IPPingDiagnostics.DataBlockSize', '64', 'u', W],
    ['IPPingDiagnostics.SuccessCount', '0', 'u'],
    ['IPPingDiagnostics.FailureCount', '0', 'u'],
    ['IPPingDiagnostics.AverageResponseTime', '0', 'u'],
    ['IPPingDiagnostics.MinimumResponseTime', '0', 'u'],
    ['IPPingDiagnostics.MaximumResponseTime', '0', 'u'],
  ],
  tables: [
    {
      pattern: 'InternetGatewayDevice.WANDevice.{i}.WANConnectionDevice.{i}.WANIPConnection.{i}.PortMapping.',
      children: [
        ['PortMappingEnabled', 'false', 'b', W],
        ['PortMappingLeaseDuration', '0', 'u', W],
        ['RemoteHost', '', 's', W],
        ['ExternalPort', '0', 'u', W],
        ['InternalPort', '0', 'u', W],
        ['PortMappingProtocol', 'TCP', 's', W],
        ['InternalClient', '', 's', W],
        ['PortMappingDescription', '', 's', W],
      ],
    },
    {
      pattern: 'InternetGatewayDevice.LANDevice.{i}.WLANConfiguration.',
      counter: 'LANWLANConfigurationNumberOfEntries',
      children: [
        ['Enable', 'false', 'b', W],
        ['Status', 'Disabled', 's'],
        ['SSID', '', 's', W],
        ['Channel', '1', 'u', W],
        ['BeaconType', 'Basic', 's', W],
        ['Standard', 'g', 's'],
        ['KeyPassphrase', '', 's', W],
        ['TotalAssociations', '0', 'u'],
      ],
    },
  ],
  forcedInform: [
    'DeviceSummary',
    'DeviceInfo.SpecVersion',
    'DeviceInfo.HardwareVersion',
    'DeviceInfo.SoftwareVersion',
    'DeviceInfo.ProvisioningCode',
    'ManagementServer.ConnectionRequestURL',
    'ManagementServer.ParameterKey',
    'WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.ExternalIPAddress',
  ],
  forcedActive: [
    'DeviceInfo.SoftwareVersion',
    'DeviceInfo.ProvisioningCode',
    'ManagementServer.ConnectionRequestURL',
    'WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.ExternalIPAddress',
  ],
};

function ipIf(n: number, name: string, ip: string, mask: string, addressing: string): Def[] {
  const p = `IP.Interface.${n}.`;
  return [
    [p + 'Enable', 'true', 'b', W],
    [p + 'Status', 'Up', 's'],
    [p + 'Alias', `cpe-${name}`, 's', W],
    [p + 'Name', name, 's'],
    [p + 'Type', 'Normal', 's'],
    [p + 'LowerLayers', n === 1 ? 'Device.Bridging.Bridge.1.Port.1.' : 'Device.Ethernet.Link.2.', 's', W],
    [p + 'IPv4AddressNumberOfEntries', '1', 'u'],
    [p + 'IPv4Address.1.Enable', 'true', 'b', W],
    [p + 'IPv4Address.1.IPAddress', ip, 's', W],
    [p + 'IPv4Address.1.SubnetMask', mask, 's', W],
    [p + 'IPv4Address.1.AddressingType', addressing, 's'],
  ];
}

function wifi(n: number, band: string, channel: string, standards: string, ssid: string): Def[] {
  const r = `WiFi.Radio.${n}.`;
  const s = `WiFi.SSID.${n}.`;
  const a = `WiFi.AccessPoint.${n}.`;
  return [
    [r + 'Enable', 'true', 'b', W],
    [r + 'Status', 'Up', 's'],
    [r + 'OperatingFrequencyBand', band, 's', W],
    [r + 'Channel', channel, 'u', W],
    [r + 'AutoChannelEnable', 'false', 'b', W],
    [r + 'OperatingStandards', standards, 's', W],
    [s + 'Enable', 'true', 'b', W],
    [s + 'Status', 'Up', 's'],
    [s + 'Name', `wl${n - 1}`, 's'],
    [s + 'SSID', ssid, 's', W],
    [s + 'LowerLayers', `Device.WiFi.Radio.${n}.`, 's', W],
    [a + 'Enable', 'true', 'b', W],
    [a + 'Status', 'Enabled', 's'],
    [a + 'SSIDReference', `Device.WiFi.SSID.${n}.`, 's', W],
    [a + 'SSIDAdvertisementEnabled', 'true', 'b', W],
    [a + 'Security.ModeEnabled', 'WPA2-Personal', 's', W],
    [a + 'Security.KeyPassphrase', '', 's', W],
    [a + 'AssociatedDeviceNumberOfEntries', '0', 'u'],
  ];
}

const TR181: ModelSpec = {
  root: 'Device.',
  defs: [
    ['RootDataModelVersion', '2.12', 's'],
    ...DEVINFO,
    ['DeviceInfo.ProvisioningCode', '', 's', W],
    ['DeviceInfo.UpTime', '0', 'u'],
    ...MGMT,
    ['Time.Enable', 'true', 'b', W],
    ['Time.Status', 'Synchronized', 's'],
    ['Time.NTPServer1', 'pool.ntp.org', 's', W],
    ['Time.CurrentLocalTime', '{now}', 'd'],
    ['Time.LocalTimeZone', 'UTC0', 's', W],
    ['IP.IPv4Enable', 'true', 'b', W],
    ['IP.InterfaceNumberOfEntries', '2', 'u'],
    ...ipIf(1, 'br-lan', '192.168.1.1', '255.255.255.0', 'Static'),
    ...ipIf(2, 'wan', '{wanIp}', '255.192.0.0', 'DHCP'),
    ['IP.Diagnostics.IPPing.DiagnosticsState', 'None', 's', W],
    ['IP.Diagnostics.IPPing.Interface', '', 's', W],
    ['IP.Diagnostics.IPPing.Host', '', 's', W],
    ['IP.Diagnostics.IPPing.NumberOfRepetitions', '4', 'u', W],
    ['IP.Diagnostics.IPPing.Timeout', '1000', 'u', W],
    ['IP.Diagnostics.IPPing.DataBlockSize', '64', 'u', W],
    ['IP.Diagnostics.IPPing.SuccessCount', '0', 'u'],
    ['IP.Diagnostics.IPPing.FailureCount', '0', 'u'],
    ['IP.Diagnostics.IPPing.AverageResponseTime', '0', 'u'],
    ['IP.Diagnostics.IPPing.MinimumResponseTime', '0', 'u'],
    ['IP.Diagnostics.IPPing.MaximumResponseTime', '0', 'u'],
    ['WiFi.RadioNumberOfEntries', '2', 'u'],
    ['WiFi.SSIDNumberOfEntries', '2', 'u'],
    ['WiFi.AccessPointNumberOfEntries', '2', 'u'],
    ...wifi(1, '2.4GHz', '6', 'b,g,n', 'Sim-{serial}'),
    ...wifi(2, '5GHz', '36', 'a,n,ac', 'Sim-{serial}-5G'),
    ['Hosts.HostNumberOfEntries', '1', 'u'],
    ['Hosts.Host.1.PhysAddress', '02:00:00:aa:bb:01', 's'],
    ['Hosts.Host.1.IPAddress', '192.168.1.100', 's'],
    ['Hosts.Host.1.HostName', 'laptop', 's'],
    ['Hosts.Host.1.Active', 'true', 'b'],
    ['NAT.PortMappingNumberOfEntries', '0', 'u'],
    ['NAT.PortMapping.', '', ''],
  ],
  tables: [
    {
      pattern: 'Device.NAT.PortMapping.',
      children: [
        ['Enable', 'false', 'b', W],
        ['Alias', '', 's', W],
        ['Interface', '', 's', W],
        ['AllInterfaces', 'false', 'b', W],
        ['LeaseDuration', '0', 'u', W],
        ['RemoteHost', '', 's', W],
        ['ExternalPort', '0', 'u', W],
        ['InternalPort', '0', 'u', W],
        ['Protocol', 'TCP', 's', W],
        ['InternalClient', '', 's', W],
        ['Description', '', 's', W],
      ],
    },
    {
      pattern: 'Device.WiFi.SSID.',
      children: [
        ['Enable', 'false', 'b', W],
        ['Status', 'Down', 's'],
        ['Name', '', 's'],
        ['SSID', '', 's', W],
        ['LowerLayers', '', 's', W],
      ],
    },
    {
      pattern: 'Device.IP.Interface.{i}.IPv4Address.',
      children: [
        ['Enable', 'false', 'b', W],
        ['IPAddress', '', 's', W],
        ['SubnetMask', '', 's', W],
        ['AddressingType', 'Static', 's'],
      ],
    },
  ],
  forcedInform: [
    'RootDataModelVersion',
    'DeviceInfo.HardwareVersion',
    'DeviceInfo.SoftwareVersion',
    'DeviceInfo.ProvisioningCode',
    'ManagementServer.ConnectionRequestURL',
    'ManagementServer.ParameterKey',
  ],
  forcedActive: ['DeviceInfo.SoftwareVersion', 'DeviceInfo.ProvisioningCode', 'ManagementServer.ConnectionRequestURL'],
};

interface CompiledTable {
  re: RegExp;
  counter?: string;
  children: { rel: string; value: string; type: string; writable: boolean }[];
}

interface Compiled {
  root: string;
  /** Full name → shared, never mutated definition (values may hold {placeholders}). */
  defs: Map<string, CpeParam>;
  /** Explicit object paths (empty tables). */
  objects: string[];
  tables: CompiledTable[];
  forcedInform: string[];
  forcedActive: Set<string>;
  uptime: string;
  parameterKey: string;
}

function compile(spec: ModelSpec): Compiled {
  const forcedActive = new Set(spec.forcedActive.map((n) => spec.root + n));
  const defs = new Map<string, CpeParam>();
  const objects: string[] = [];
  for (const [rel, value, t, w] of spec.defs) {
    const name = spec.root + rel;
    if (name.endsWith('.')) {
      objects.push(name);
      continue;
    }
    defs.set(name, { value, type: T[t], writable: w === true, notification: forcedActive.has(name) ? 2 : 0 });
  }
  const tables = spec.tables.map((tt) => ({
    re: new RegExp('^' + tt.pattern.replace(/\./g, '\\.').replace(/\{i\}/g, '\\d+') + '$'),
    counter: tt.counter,
    children: tt.children.map(([rel, value, t, w]) => ({ rel, value, type: T[t], writable: w === true })),
  }));
  return {
    root: spec.root,
    defs,
    objects,
    tables,
    forcedInform: spec.forcedInform.map((n) => spec.root + n),
    forcedActive,
    uptime: spec.root + 'DeviceInfo.UpTime',
    parameterKey: spec.root + 'ManagementServer.ParameterKey',
  };
}

const COMPILED: Partial<Record<DataModelKind, Compiled>> = {};
function compiled(kind: DataModelKind): Compiled {
  return (COMPILED[kind] ??= compile(kind === 'tr098' ? TR098 : TR181));
}

export function rootOf(kind: DataModelKind): string {
  return kind === 'tr098' ? TR098.root : TR181.root;
}

// ---- values -------------------------------------------------------------------------------

const SECRET = /(?:Password|Passphrase|PreSharedKey|WEPKey)$/;

/** True for parameters that read back empty (passwords, Wi-Fi keys). */
export function isSecret(name: string): boolean {
  return SECRET.test(name);
}

function substitute(v: string, id: Identity): string {
  if (v.indexOf('{') < 0) return v;
  return v.replace(/\{(\w+)\}/g, (m, k: string) => {
    if (k === 'now') return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
    const x = (id as unknown as Record<string, string | undefined>)[k];
    return x ?? m;
  });
}

function baseType(t: string): string {
  const c = t.indexOf(':');
  return (c < 0 ? t : t.slice(c + 1)).toLowerCase();
}

/** Whether value is a valid lexical value of the xsd type (lenient, like real CPEs). */
export function validValue(type: string, value: string): boolean {
  const v = value.trim();
  switch (baseType(type)) {
    case 'boolean':
      return /^(true|false|0|1)$/i.test(v);
    case 'unsignedint':
      return /^\d{1,10}$/.test(v) && Number(v) <= 4294967295;
    case 'int':
      return /^-?\d{1,10}$/.test(v) && Number(v) >= -2147483648 && Number(v) <= 2147483647;
    case 'unsignedlong':
      return /^\d{1,20}$/.test(v);
    case 'long':
      return /^-?\d{1,19}$/.test(v);
    case 'datetime':
      return v === '0001-01-01T00:00:00Z' || (/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/.test(v) && !Number.isNaN(Date.parse(v)));
    case 'base64':
      return /^[A-Za-z0-9+/=\s]*$/.test(v);
    case 'hexbinary':
      return /^([0-9a-fA-F]{2})*$/.test(v);
    default:
      return true;
  }
}

const INSTANCE_PATH = /^(.*\.)(\d+)\.$/;

// ---- the model ----------------------------------------------------------------------------

export class CpeModel {
  readonly root: string;
  /** Date.now() at the last (simulated) boot; DeviceInfo.UpTime counts from here. */
  bootAt = Date.now();
  /** Parameters with notification 1/2 changed by setLocal() since the last delivered Inform. */
  changed: Set<string> | undefined;
  private readonly c: Compiled;
  private _params: Map<string, CpeParam> | undefined;
  private _objects: Map<string, boolean> | undefined;
  private accessLists: Map<string, string[]> | undefined;

  constructor(
    readonly kind: DataModelKind,
    readonly identity: Identity,
    private readonly overrides?: Record<string, ParamOverride>,
  ) {
    this.c = compiled(kind);
    this.root = this.c.root;
  }

  /** Whether the per-device parameter Map has been built yet. */
  get materialized(): boolean {
    return this._params !== undefined;
  }

  /** Every parameter (objects excluded), built from the template on first use. */
  get params(): Map<string, CpeParam> {
    if (!this._params) this.materialize();
    return this._params!;
  }

  /** Every object path (ending in "."), with its Writable flag (true for tables and their instances). */
  get objects(): Map<string, boolean> {
    if (!this._objects) this.materialize();
    return this._objects!;
  }

  /** Back to factory defaults (FactoryReset). */
  reset(): void {
    this._params = undefined;
    this._objects = undefined;
    this.accessLists = undefined;
    this.changed = undefined;
  }

  private materialize(): void {
    const id = this.identity;
    const params = new Map<string, CpeParam>();
    for (const [name, d] of this.c.defs) {
      params.set(name, { value: substitute(d.value, id), type: d.type, writable: d.writable, notification: d.notification });
    }
    if (this.overrides) {
      for (const name of Object.keys(this.overrides)) {
        const o = this.overrides[name];
        const old = params.get(name);
        params.set(name, {
          value: o.value,
          type: o.type,
          writable: o.writable ?? old?.writable ?? false,
          notification: old?.notification ?? 0,
        });
      }
    }
    const objects = new Map<string, boolean>();
    for (const name of params.keys()) this.addAncestors(objects, name);
    for (const o of this.c.objects) this.addAncestors(objects, o);
    this._params = params;
    this._objects = objects;
  }

  /** Registers every object path above name (and name itself when it ends in "."). */
  private addAncestors(objects: Map<string, boolean>, name: string): void {
    let i = name.indexOf('.');
    while (i >= 0) {
      const p = name.slice(0, i + 1);
      if (!objects.has(p)) objects.set(p, this.isTable(p) || this.isInstance(p));
      i = name.indexOf('.', i + 1);
    }
  }

  private tableOf(path: string): CompiledTable | undefined {
    for (const t of this.c.tables) if (t.re.test(path)) return t;
    return undefined;
  }

  private isTable(path: string): boolean {
    return this.tableOf(path) !== undefined;
  }

  private isInstance(path: string): boolean {
    const m = INSTANCE_PATH.exec(path);
    return m !== null && this.isTable(m[1]);
  }

  /** Value as read by the ACS (secrets empty, UpTime live). */
  private read(name: string, p: CpeParam): string {
    if (name === this.c.uptime) return String(Math.floor((Date.now() - this.bootAt) / 1000));
    if (p.value !== '' && SECRET.test(name)) return '';
    return p.value;
  }

  /** Name, value and type of one parameter without building the Map when it is not there yet. */
  peek(name: string): ParameterValueStruct | undefined {
    if (this._params) {
      const p = this._params.get(name);
      return p && { name, value: this.read(name, p), type: p.type };
    }
    const o = this.overrides?.[name];
    if (o) return { name, value: SECRET.test(name) ? '' : o.value, type: o.type };
    const d = this.c.defs.get(name);
    if (!d) return undefined;
    if (name === this.c.uptime) return { name, value: this.read(name, d), type: d.type };
    return { name, value: SECRET.test(name) ? '' : substitute(d.value, this.identity), type: d.type };
  }

  /** The raw stored value (secrets included), or undefined. */
  get(name: string): string | undefined {
    if (this._params) return this._params.get(name)?.value;
    const o = this.overrides?.[name];
    if (o) return o.value;
    const d = this.c.defs.get(name);
    return d && substitute(d.value, this.identity);
  }

  /** Changes a value "on the device" (the owner in the router UI): notified next Inform when notification > 0. */
  setLocal(name: string, value: string): void {
    const p = this.params.get(name);
    if (!p) throw new Error(`setLocal: no parameter ${name}`);
    if (p.value === value) return;
    p.value = value;
    if (p.notification > 0) (this.changed ??= new Set()).add(name);
  }

  /** Inform ParameterList: forced parameters, then changed notified ones. */
  informParams(): ParameterValueStruct[] {
    const out: ParameterValueStruct[] = [];
    for (const n of this.c.forcedInform) {
      const pv = this.peek(n);
      if (pv) out.push(pv);
    }
    if (this.changed) {
      for (const n of this.changed) {
        if (this.c.forcedInform.includes(n)) continue;
        const pv = this.peek(n);
        if (pv) out.push(pv);
      }
    }
    return out;
  }

  get hasValueChange(): boolean {
    return this.changed !== undefined && this.changed.size > 0;
  }

  // ---- RPC handlers ----------------------------------------------------------------------

  /** Names under a path: "" = everything, "X." = the subtree (must exist), else one parameter. */
  private expand(name: string): string[] | null {
    const params = this.params;
    if (name === '' || name.endsWith('.')) {
      if (name !== '' && !this.objects.has(name)) return null;
      const out: string[] = [];
      for (const k of params.keys()) if (k.startsWith(name)) out.push(k);
      return out;
    }
    return params.has(name) ? [name] : null;
  }

  getParameterValues(names: string[]): CpeResponse | SoapFault {
    const list: ParameterValueStruct[] = [];
    const params = this.params;
    for (const n of names) {
      const found = this.expand(n);
      if (!found) return makeFault(9005, `Invalid parameter name: ${n}`);
      for (const k of found) list.push({ name: k, value: this.read(k, params.get(k)!), type: params.get(k)!.type });
    }
    return { method: 'GetParameterValuesResponse', parameterList: list };
  }

  setParameterValues(list: ParameterValueStruct[], parameterKey: string): CpeResponse | SoapFault {
    const params = this.params;
    const faults: SetParameterValuesFaultStruct[] = [];
    const seen = new Set<string>();
    for (const pv of list) {
      if (seen.has(pv.name)) return makeFault(9003, `Parameter ${pv.name} appears more than once`);
      seen.add(pv.name);
      const p = params.get(pv.name);
      let code = 0;
      if (!p) code = 9005;
      else if (!p.writable) code = 9008;
      else if (pv.type && baseType(pv.type) !== baseType(p.type)) code = 9006;
      else if (!validValue(p.type, pv.value)) code = 9007;
      if (code) {
        faults.push({ parameterName: pv.name, faultCode: code, faultString: makeFault(code).message });
      }
    }
    if (faults.length) return makeFault(9003, undefined, faults);
    for (const pv of list) params.get(pv.name)!.value = pv.value;
    this.setParameterKey(parameterKey);
    return { method: 'SetParameterValuesResponse', status: 0 };
  }

  private setParameterKey(key: string): void {
    const p = this.params.get(this.c.parameterKey);
    if (p) p.value = key;
  }

  getParameterNames(path: string, nextLevel: boolean): CpeResponse | SoapFault {
    const params = this.params;
    const objects = this.objects;
    const out: ParameterInfoStruct[] = [];
    if (path !== '' && !path.endsWith('.')) {
      const p = params.get(path);
      if (!p) return makeFault(9005, `Invalid parameter name: ${path}`);
      if (nextLevel) return makeFault(9003, 'NextLevel must be false for a parameter name');
      out.push({ name: path, writable: p.writable });
      return { method: 'GetParameterNamesResponse', parameterList: out };
    }
    if (path !== '' && !objects.has(path)) return makeFault(9005, `Invalid parameter name: ${path}`);
    if (path === '' && nextLevel) {
      out.push({ name: this.root, writable: false });
      return { method: 'GetParameterNamesResponse', parameterList: out };
    }
    const emitted = new Set<string>();
    const emitObj = (o: string) => {
      if (emitted.has(o)) return;
      emitted.add(o);
      out.push({ name: o, writable: objects.get(o) ?? false });
    };
    if (nextLevel) {
      for (const [k, p] of params) {
        if (!k.startsWith(path)) continue;
        const dot = k.indexOf('.', path.length);
        if (dot < 0) out.push({ name: k, writable: p.writable });
        else emitObj(k.slice(0, dot + 1));
      }
      for (const o of objects.keys()) {
        if (o.length > path.length && o.startsWith(path) && o.indexOf('.', path.length) === o.length - 1) emitObj(o);
      }
    } else {
      for (const [k, p] of params) {
        if (!k.startsWith(path)) continue;
        // the path itself, then every object between it and the parameter
        let i = path === '' ? k.indexOf('.') : path.length - 1;
        while (i >= 0) {
          emitObj(k.slice(0, i + 1));
          i = k.indexOf('.', i + 1);
        }
        out.push({ name: k, writable: p.writable });
      }
      for (const o of objects.keys()) if (o.startsWith(path)) emitObj(o);
    }
    return { method: 'GetParameterNamesResponse', parameterList: out };
  }

  getParameterAttributes(names: string[]): CpeResponse | SoapFault {
    const params = this.params;
    const list: ParameterAttributeStruct[] = [];
    for (const n of names) {
      const found = this.expand(n);
      if (!found) return makeFault(9005, `Invalid parameter name: ${n}`);
      for (const k of found) {
        list.push({ name: k, notification: params.get(k)!.notification, accessList: this.accessLists?.get(k) ?? [] });
      }
    }
    return { method: 'GetParameterAttributesResponse', parameterList: list };
  }

  setParameterAttributes(list: SetParameterAttributesStruct[]): CpeResponse | SoapFault {
    const params = this.params;
    const plan: { names: string[]; s: SetParameterAttributesStruct }[] = [];
    for (const s of list) {
      const names = this.expand(s.name);
      if (!names) return makeFault(9005, `Invalid parameter name: ${s.name}`);
      if (s.notificationChange) {
        if (!Number.isInteger(s.notification) || s.notification < 0 || s.notification > 2) {
          return makeFault(9003, `Invalid notification ${s.notification}`);
        }
        for (const n of names) {
          if (this.c.forcedActive.has(n) && s.notification !== 2) {
            return makeFault(9009, `${n} has forced active notification`);
          }
        }
      }
      plan.push({ names, s });
    }
    for (const { names, s } of plan) {
      for (const n of names) {
        if (s.notificationChange) params.get(n)!.notification = s.notification;
        if (s.accessListChange) (this.accessLists ??= new Map()).set(n, [...s.accessList]);
      }
    }
    return { method: 'SetParameterAttributesResponse' };
  }

  addObject(objectName: string, parameterKey: string): CpeResponse | SoapFault {
    const t = objectName.endsWith('.') ? this.tableOf(objectName) : undefined;
    if (!t || !this.objects.has(objectName)) return makeFault(9005, `Invalid object name: ${objectName}`);
    let max = 0;
    for (const o of this.objects.keys()) {
      if (o.length > objectName.length && o.startsWith(objectName)) {
        const n = parseInt(o.slice(objectName.length), 10);
        if (n > max) max = n;
      }
    }
    const inst = max + 1;
    const base = `${objectName}${inst}.`;
    const params = this.params;
    for (const ch of t.children) {
      params.set(base + ch.rel, { value: ch.value, type: ch.type, writable: ch.writable, notification: 0 });
      this.addAncestors(this.objects, base + ch.rel);
    }
    this.addAncestors(this.objects, base);
    this.updateCounter(objectName, t);
    this.setParameterKey(parameterKey);
    return { method: 'AddObjectResponse', instanceNumber: inst, status: 0 };
  }

  deleteObject(objectName: string, parameterKey: string): CpeResponse | SoapFault {
    const m = INSTANCE_PATH.exec(objectName);
    const t = m ? this.tableOf(m[1]) : undefined;
    if (!m || !this.objects.has(objectName)) return makeFault(9005, `Invalid object name: ${objectName}`);
    if (!t) return makeFault(9003, `${objectName} is not a deletable instance`);
    const params = this.params;
    for (const k of [...params.keys()]) if (k.startsWith(objectName)) params.delete(k);
    for (const k of [...this.objects.keys()]) if (k.startsWith(objectName)) this.objects.delete(k);
    if (this.accessLists) for (const k of [...this.accessLists.keys()]) if (k.startsWith(objectName)) this.accessLists.delete(k);
    this.changed?.forEach((k) => k.startsWith(objectName) && this.changed!.delete(k));
    this.updateCounter(m[1], t);
    this.setParameterKey(parameterKey);
    return { method: 'DeleteObjectResponse', status: 0 };
  }

  /** Recounts a table's instances into its NumberOfEntries parameter, when it has one. */
  private updateCounter(table: string, t: CompiledTable): void {
    const trimmed = table.slice(0, -1);
    const dot = trimmed.lastIndexOf('.');
    const parent = trimmed.slice(0, dot + 1);
    const counter = parent + (t.counter ?? trimmed.slice(dot + 1) + 'NumberOfEntries');
    const p = this.params.get(counter);
    if (!p) return;
    let n = 0;
    for (const o of this.objects.keys()) {
      if (o.length > table.length && o.startsWith(table) && o.indexOf('.', table.length) === o.length - 1) n++;
    }
    p.value = String(n);
  }
}
