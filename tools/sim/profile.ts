// One simulated household's router: which model it is, its software version, its Wi-Fi, WAN,
// mobile and usage values, whether its owner joined the diagnostics program, and the faults the
// shipped fix rules (src/rules/shipped.ts) look for — then, session after session, how those
// values move (counters grow, signals wander, a faulty radio keeps counting driver errors) and
// how the fixes the ACS pushes change them (a radio restart clears its errors; automatic channel
// or full transmit power lifts the weak clients' signal).
//
// The values are parameters added to (or overriding) the test CPE's TR-098 / TR-181 template
// (test/support/cpe-model.ts); names follow the collection profile
// (src/diagnostics/default-profile.ts), vendor extensions with its X_VENDOR_ prefix.
import type { ParameterValueStruct } from '../../cwmp/types';
import type { ParamOverride, TestCpe } from '../../test/support/cpe';
import { currentFirmware, MODELS, type RouterModel } from './catalogue';
import { between, chance, digits, hex, int, pick, streamOf, weighted, type Rng } from './random';

/** What the shipped rules find, with the share of a fleet that has it at `faults: 1`. */
export const FAULTS = {
  /** Software below the model's current version (firmware-minimum, once an operator sets the minimum). */
  oldFirmware: 0.2,
  /** A Wi-Fi client far from the router (wifi-coverage). */
  weakSignal: 0.12,
  /** A radio counting driver errors (wifi-driver-error). */
  driverErrors: 0.06,
  /** Open or WEP Wi-Fi, or a password the router rates weak (wifi-weak-security). */
  weakSecurity: 0.08,
  /** Over 100 GiB this month (data-limit; mobile and TR-098 WAN counters). */
  heavyUser: 0.05,
  /** Restarts by itself and drops its WAN link (unexpected-restarts, frequent-disconnects). */
  flaky: 0.03,
  /** Periodic inform off or every two days (periodic-inform). */
  rareInform: 0.02,
} as const;
export type Fault = keyof typeof FAULTS;

export interface ProfileOptions {
  seed: number;
  index: number;
  serialPrefix: string;
  intervalS: number;
  /** Share of owners who joined the diagnostics program. */
  optIn: number;
  /** Multiplies every share of FAULTS (0: a healthy fleet). */
  faults: number;
  /** The device's setting of the program (the ACS reads it at BOOTSTRAP and BOOT). */
  consentParam: { tr181: string; tr098: string };
  crUrl: (serial: string) => string;
}

type Params = Record<string, ParamOverride>;

const str = (value: string, writable = false): ParamOverride => ({ value, type: 'xsd:string', writable });
const uint = (n: number, writable = false): ParamOverride => ({ value: String(Math.max(0, Math.round(n))), type: 'xsd:unsignedInt', writable });
const ulong = (n: number): ParamOverride => ({ value: String(Math.max(0, Math.round(n))), type: 'xsd:unsignedLong' });
const sint = (n: number, writable = false): ParamOverride => ({ value: String(Math.round(n)), type: 'xsd:int', writable });
const bool = (v: boolean, writable = false): ParamOverride => ({ value: String(v), type: 'xsd:boolean', writable });

const GIB = 1024 ** 3;
/** Signal (dBm) of Wi-Fi clients near the router, and of the one that is too far. */
const GOOD_SIGNAL: [number, number] = [-72, -38];
const WEAK_SIGNAL: [number, number] = [-90, -77];

/** Where the households are: POSIX TZ (what TR-181 Time.LocalTimeZone holds), mobile network, public DNS. */
const REGIONS = [
  { tz: 'CET-1CEST,M3.5.0,M10.5.0/3', plmn: '26201', msisdn: '+4915', weight: 40 },
  { tz: 'GMT0BST,M3.5.0/1,M10.5.0', plmn: '23415', msisdn: '+447', weight: 20 },
  { tz: 'EET-2EEST,M3.5.0/3,M10.5.0/4', plmn: '24405', msisdn: '+35840', weight: 15 },
  { tz: 'EST5EDT,M3.2.0,M11.1.0', plmn: '310260', msisdn: '+1555', weight: 15 },
  { tz: '<+0530>-5:30', plmn: '40445', msisdn: '+9198', weight: 10 },
] as const;

interface Radio {
  /** "Device.WiFi.Radio.1." or "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.". */
  object: string;
  driverErrors: string;
  /** SignalStrength parameters of its associated clients. */
  clients: string[];
  weak: boolean;
  /** Driver errors keep coming until the radio is restarted. */
  failing: boolean;
}

interface Counter {
  name: string;
  /** Bytes (or packets, errors) per second, on average. */
  rate: number;
}

export class DeviceProfile {
  readonly model: RouterModel;
  readonly serial: string;
  readonly optedIn: boolean;
  readonly faults = new Set<Fault>();
  /** Parameters added to or overriding the template, as the CPE's options take them. */
  readonly params: Params = {};
  /** The device's own random stream: composition first, then its life. */
  readonly random: Rng;
  private readonly root: string;
  private readonly radios: Radio[] = [];
  private readonly counters: Counter[] = [];
  private readonly wanUptime: string;
  /** Mobile signal values and their ranges. */
  private readonly mobile: { name: string; lo: number; hi: number }[] = [];
  private readonly battery?: string;
  private lastAt = Date.now();
  private wanUpAt = Date.now();
  private seenBoot = 0;

  constructor(o: ProfileOptions) {
    const r = (this.random = streamOf(o.seed, o.index));
    const m = (this.model = weighted(r, MODELS.map((x) => [x, x.weight] as const)));
    this.serial = o.serialPrefix + String(o.index).padStart(7, '0');
    this.optedIn = chance(r, o.optIn);
    for (const [f, share] of Object.entries(FAULTS) as [Fault, number][]) if (chance(r, share * o.faults)) this.faults.add(f);
    const root = (this.root = m.dataModel === 'tr181' ? 'Device.' : 'InternetGatewayDevice.');
    const region = weighted(r, REGIONS.map((x) => [x, x.weight] as const));
    const p = this.params;
    const set = (rel: string, v: ParamOverride) => (p[root + rel] = v);
    const mac = () => (m.oui + hex(r, 6)).toUpperCase().replace(/(..)(?!$)/g, '$1:');

    // Identity, management, the program setting.
    const old = m.firmware.slice(0, -1);
    set('DeviceInfo.SoftwareVersion', str(this.faults.has('oldFirmware') && old.length ? pick(r, old) : currentFirmware(m)));
    set('DeviceInfo.HardwareVersion', str(m.hardwareVersion));
    set('DeviceInfo.ModelName', str(m.modelName));
    set('DeviceInfo.Description', str(`${m.manufacturer} ${m.modelName}`));
    set('DeviceInfo.X_VENDOR_AbnormalEvents', uint(this.faults.has('flaky') ? int(r, 3, 12) : 0));
    p[m.dataModel === 'tr181' ? o.consentParam.tr181 : o.consentParam.tr098] = bool(this.optedIn, true);
    const rare = this.faults.has('rareInform');
    set('ManagementServer.PeriodicInformEnable', bool(!(rare && chance(r, 0.5)), true));
    set('ManagementServer.PeriodicInformInterval', uint(rare ? 2 * 86_400 : o.intervalS, true));
    set('ManagementServer.ConnectionRequestURL', str(o.crUrl(this.serial)));
    set(m.dataModel === 'tr181' ? 'Time.LocalTimeZone' : 'Time.LocalTimeZoneName', str(region.tz, true));

    // WAN: a carrier-grade NAT address on mobile, else one from the documentation ranges.
    const wanIp = m.cellular ? `100.${int(r, 64, 127)}.${int(r, 0, 255)}.${int(r, 1, 254)}` : `${pick(r, ['192.0.2', '198.51.100', '203.0.113'])}.${int(r, 1, 254)}`;
    // Usage so far this month (bytes/s on average; the counters count from the plan's month start).
    const heavy = this.faults.has('heavyUser');
    const down = heavy ? between(r, 0.6, 2) * 1024 ** 2 : between(r, 3, 25) * 1024;
    const up = down * between(r, 0.08, 0.25);
    const elapsed = between(r, 0, 30) * 86_400;
    const heavyTotal = between(r, 105, 130) * GIB; // over the data-limit rule's 100 GiB
    const startDown = heavy ? heavyTotal * 0.85 : down * elapsed;
    const startUp = heavy ? heavyTotal * 0.15 : up * elapsed;
    const counter = (rel: string, start: number, rate: number) => {
      set(rel, ulong(start));
      this.counters.push({ name: root + rel, rate });
    };

    if (m.dataModel === 'tr181') {
      set('IP.Interface.2.IPv4Address.1.IPAddress', str(wanIp, true));
      set('IP.Interface.2.LastChange', uint(0));
      this.wanUptime = root + 'IP.Interface.2.LastChange';
      counter('IP.Interface.2.Stats.BytesSent', startUp, up);
      counter('IP.Interface.2.Stats.BytesReceived', startDown, down);
      counter('IP.Interface.1.Stats.BytesSent', startDown * 0.97, down * 0.97);
      counter('IP.Interface.1.Stats.BytesReceived', startUp * 0.97, up * 0.97);
      set('Ethernet.InterfaceNumberOfEntries', uint(1));
      set('Ethernet.Interface.1.Enable', bool(true, true));
      set('Ethernet.Interface.1.Status', str('Up'));
      set('Ethernet.Interface.1.MACAddress', str(mac()));
      set('DHCPv4.ClientNumberOfEntries', uint(1));
      set('DHCPv4.Client.1.Enable', bool(true, true));
      set('DHCPv4.Client.1.Interface', str('Device.IP.Interface.2.', true));
      set('DHCPv4.Client.1.Status', str('Enabled'));
      set('DHCPv4.Client.1.DHCPStatus', str('Bound'));
      set('DHCPv4.Client.1.IPAddress', str(wanIp));
      set('DHCPv4.Client.1.SubnetMask', str(m.cellular ? '255.192.0.0' : '255.255.255.0'));
      set('DHCPv4.Client.1.IPRouters', str(wanIp.replace(/\.\d+$/, '.1')));
      set('DHCPv4.Client.1.DNSServers', str('9.9.9.9,1.1.1.1'));
      set('DHCPv4.Client.1.LeaseTimeRemaining', sint(int(r, 600, 86_400)));
      set('DNS.Client.Enable', bool(true, true));
      set('DNS.Client.ServerNumberOfEntries', uint(1));
      set('DNS.Client.Server.1.DNSServer', str('9.9.9.9', true));
      set('DNS.Client.Server.1.Status', str('Enabled'));
      set('DNS.Client.Server.1.Type', str('DHCPv4'));
      set('Firewall.Enable', bool(chance(r, 0.95), true));
      set('Firewall.Config', str(weighted(r, [['Low', 6], ['High', 3], ['Advanced', 1]] as const), true));
      set('WiFi.X_VENDOR_BandSteering.Enable', bool(chance(r, 0.6), true));
      if (m.cellular) {
        const c = 'Cellular.Interface.1.';
        const roaming = chance(r, 0.05);
        set('Cellular.RoamingStatus', str(roaming ? 'Roaming' : 'Home'));
        set('Cellular.InterfaceNumberOfEntries', uint(1));
        set(c + 'Enable', bool(true, true));
        set(c + 'Status', str('Up'));
        set(c + 'IMEI', str('35' + digits(r, 13)));
        set(c + 'NetworkInUse', str(region.plmn));
        set(c + 'CurrentAccessTechnology', str(m.cellular === 'NR' && chance(r, 0.7) ? 'NR' : 'LTE'));
        set(c + 'USIM.IMSI', str(region.plmn + digits(r, 15 - region.plmn.length)));
        set(c + 'USIM.ICCID', str('89' + digits(r, 17)));
        set(c + 'USIM.MSISDN', str(region.msisdn + digits(r, 7)));
        set(c + 'X_VENDOR_CellID', str(hex(r, 7).toUpperCase()));
        const mob = (rel: string, lo: number, hi: number) => {
          set(c + rel, sint(between(r, lo, hi)));
          this.mobile.push({ name: root + c + rel, lo, hi });
        };
        mob('RSSI', -95, -55);
        mob('RSRP', -118, -80);
        mob('RSRQ', -18, -5);
        mob('X_VENDOR_SINR', -2, 25);
        counter(c + 'Stats.BytesSent', startUp, up);
        counter(c + 'Stats.BytesReceived', startDown, down);
        counter(c + 'Stats.PacketsSent', startUp / 900, up / 900);
        counter(c + 'Stats.PacketsReceived', startDown / 1300, down / 1300);
        // A weak cell: lost frames now and then.
        counter(c + 'Stats.ErrorsSent', 0, between(r, 0, 0.002));
        counter(c + 'Stats.ErrorsReceived', 0, between(r, 0, 0.01));
        set('Cellular.AccessPointNumberOfEntries', uint(1));
        set('Cellular.AccessPoint.1.Enable', bool(true, true));
        set('Cellular.AccessPoint.1.APN', str(pick(r, ['internet', 'web.provider.example', 'broadband']), true));
      }
      if (m.battery) {
        this.battery = root + 'X_VENDOR_Battery.Level';
        set('X_VENDOR_Battery.Level', uint(int(r, 20, 100)));
        set('X_VENDOR_Battery.Usage', uint(int(r, 80, 400)));
        set('X_VENDOR_Battery.ChargingTime', uint(int(r, 0, 600)));
      }
    } else {
      const wan = 'WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.';
      set(wan + 'ExternalIPAddress', str(wanIp, true));
      set(wan + 'Uptime', uint(0));
      this.wanUptime = root + wan + 'Uptime';
      set('WANDevice.1.WANEthernetInterfaceConfig.Status', str('Up'));
      set('WANDevice.1.WANEthernetInterfaceConfig.MACAddress', str(mac()));
      // 64-bit like most current firmware: 32-bit counters would wrap every 4 GiB.
      counter('WANDevice.1.WANCommonInterfaceConfig.TotalBytesSent', startUp, up);
      counter('WANDevice.1.WANCommonInterfaceConfig.TotalBytesReceived', startDown, down);
      counter('WANDevice.1.WANCommonInterfaceConfig.TotalPacketsSent', startUp / 900, up / 900);
      counter('WANDevice.1.WANCommonInterfaceConfig.TotalPacketsReceived', startDown / 1300, down / 1300);
      set('Firewall.Config', str(weighted(r, [['Low', 6], ['High', 3], ['Off', 1]] as const), true));
    }

    // Wi-Fi: radio 1 is 2.4 GHz, radio 2 is 5 GHz in both templates.
    const faultyRadio = int(r, 1, 2);
    const weakRadio = int(r, 1, 2);
    for (const n of [1, 2]) {
      const radio = m.dataModel === 'tr181' ? `WiFi.Radio.${n}.` : `LANDevice.1.WLANConfiguration.${n}.`;
      const ap = m.dataModel === 'tr181' ? `WiFi.AccessPoint.${n}.` : radio;
      const auto = chance(r, 0.5);
      const channel = n === 1 ? weighted(r, [[1, 3], [6, 5], [11, 4], [3, 1]] as const) : pick(r, [36, 40, 44, 48, 100, 149]);
      const weak = this.faults.has('weakSignal') && weakRadio === n;
      const failing = this.faults.has('driverErrors') && faultyRadio === n;
      set(radio + 'Channel', uint(channel, true));
      set(radio + 'AutoChannelEnable', bool(auto && !weak, true));
      // Percent of full power; TR-181 types it int (-1 = automatic), TR-098 unsignedInt.
      const power = weak ? 40 : pick(r, [60, 80, 100]);
      set(radio + 'TransmitPower', m.dataModel === 'tr181' ? sint(power, true) : uint(power, true));
      set(radio + 'X_VENDOR_DriverErrors', uint(failing ? int(r, 3, 40) : 0));
      const insecure = this.faults.has('weakSecurity') && n === 1 && chance(r, 0.6);
      const weakPassword = this.faults.has('weakSecurity') && !insecure && n === 1;
      const strength = str(weakPassword ? 'weak' : pick(r, ['strong', 'strong', 'medium']));
      const clients = Math.max(weak ? 1 : 0, int(r, 0, n === 1 ? 4 : 3));
      const names: string[] = [];
      if (m.dataModel === 'tr181') {
        set(ap + 'Security.ModeEnabled', str(insecure ? pick(r, ['None', 'WEP-128']) : weighted(r, [['WPA2-Personal', 7], ['WPA2-WPA3-Personal', 2], ['WPA3-Personal', 1]] as const), true));
        set(ap + 'Security.X_VENDOR_PasswordStrength', strength);
        set(ap + 'X_VENDOR_IsGuest', bool(false));
        set(`WiFi.SSID.${n}.MACAddress`, str(mac()));
        set(ap + 'AssociatedDeviceNumberOfEntries', uint(clients));
        for (let k = 1; k <= clients; k++) {
          set(`${ap}AssociatedDevice.${k}.MACAddress`, str(`${hex(r, 1)}2:${hex(r, 10).replace(/(..)(?!$)/g, '$1:')}`));
          set(`${ap}AssociatedDevice.${k}.Active`, bool(true));
          names.push(root + `${ap}AssociatedDevice.${k}.SignalStrength`);
        }
      } else {
        set(radio + 'RadioEnabled', bool(true, true));
        set(radio + 'BeaconType', str(insecure ? pick(r, ['None', 'Basic']) : pick(r, ['11i', 'WPAand11i']), true));
        set(radio + 'X_VENDOR_PasswordStrength', strength);
        set(radio + 'X_VENDOR_BandSteering', bool(chance(r, 0.5), true));
        set(radio + 'X_VENDOR_IsGuest', bool(false));
        set(radio + 'TotalAssociations', uint(clients));
        for (let k = 1; k <= clients; k++) {
          set(`${radio}AssociatedDevice.${k}.AssociatedDeviceMACAddress`, str(`${hex(r, 1)}2:${hex(r, 10).replace(/(..)(?!$)/g, '$1:')}`));
          names.push(root + `${radio}AssociatedDevice.${k}.X_VENDOR_SignalStrength`);
        }
      }
      // The first client is the one too far away on a weak radio.
      names.forEach((name, k) => (p[name] = sint(k === 0 && weak ? between(r, ...WEAK_SIGNAL) : between(r, ...GOOD_SIGNAL))));
      this.radios.push({ object: root + radio, driverErrors: root + radio + 'X_VENDOR_DriverErrors', clients: names, weak, failing });
    }
  }

  /** Values move on since the last session; called right before each one. */
  evolve(cpe: TestCpe): void {
    const r = this.random;
    const now = Date.now();
    const dt = (now - this.lastAt) / 1000;
    this.lastAt = now;
    const change = (name: string, f: (v: number) => number) => cpe.setLocal(name, String(Math.round(f(Number(cpe.model.get(name) ?? 0)))));
    const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));
    for (const c of this.counters) if (c.rate > 0) change(c.name, (v) => v + c.rate * dt * between(r, 0.3, 1.7));
    for (const radio of this.radios) {
      const [lo, hi] = radio.weak ? WEAK_SIGNAL : GOOD_SIGNAL;
      for (const s of radio.clients) change(s, (v) => clamp(v + int(r, -2, 2), lo, hi));
      if (radio.failing && chance(r, 0.5)) change(radio.driverErrors, (v) => v + int(r, 1, 3));
    }
    for (const x of this.mobile) change(x.name, (v) => clamp(v + int(r, -2, 2), x.lo, x.hi));
    if (this.battery) change(this.battery, (v) => (v <= 15 ? 100 : v - int(r, 0, 2)));
    const flaky = this.faults.has('flaky');
    // A reboot brings the WAN link up again a few seconds later; a flaky line also drops by itself.
    if (cpe.model.bootAt !== this.seenBoot) {
      this.seenBoot = cpe.model.bootAt;
      this.wanUpAt = cpe.model.bootAt + int(r, 5, 30) * 1000;
    } else if (flaky && chance(r, 0.2)) {
      this.wanUpAt = now - int(r, 5, 60) * 1000;
      change(this.root + 'DeviceInfo.X_VENDOR_AbnormalEvents', (v) => v + 1);
    }
    cpe.setLocal(this.wanUptime, String(Math.max(0, Math.floor((now - this.wanUpAt) / 1000))));
  }

  /** What a SetParameterValues the device accepted does beyond storing the values. */
  applied(cpe: TestCpe, list: readonly ParameterValueStruct[]): void {
    for (const pv of list) {
      const radio = this.radios.find((x) => pv.name.startsWith(x.object) && pv.name.indexOf('.', x.object.length) < 0);
      if (!radio) continue;
      const leaf = pv.name.slice(radio.object.length);
      if (leaf === 'Enable' || leaf === 'RadioEnabled') {
        // The driver restarts: its error count starts from zero, and the fault is gone.
        radio.failing = false;
        cpe.setLocal(radio.driverErrors, '0');
      } else if ((leaf === 'AutoChannelEnable' && /^(true|1)$/i.test(pv.value)) || (leaf === 'TransmitPower' && Number(pv.value) >= 80)) {
        radio.weak = false;
        for (const s of radio.clients) cpe.setLocal(s, String(int(this.random, -66, -50)));
      }
    }
  }
}
