// The rules the ACS ships (issue 5), one per failure the diagnostics program looks for
// (../shared/diagnostics.md). Installed at start when absent; a later shipped version replaces a
// stored one only while no operator has edited it. Operators tune them through the API
// (thresholds are variables; the firmware table starts empty: fill `variables.byModel`).
import type { RuleDefinition } from './model';

export interface ShippedRule {
  id: string;
  version: number;
  definition: RuleDefinition;
}

const DAY = 86_400;

/** Wi-Fi security modes that protect nothing or next to nothing. */
const WEAK_MODES = ['None', 'WEP-64', 'WEP-128', 'WEP-64-128'];

export const SHIPPED_RULES: ShippedRule[] = [
  {
    id: 'firmware-minimum',
    version: 1,
    definition: {
      name: 'Software version below the minimum for the model',
      description:
        'Devices whose software version is below the minimum set for their model get that model\'s firmware file, in the maintenance window. ' +
        'Fill variables.byModel with {match: {productClass | modelName | oui}, values: {minVersion, firmwareFile}} (firmwareFile: a stored file, see /files).',
      enabled: true,
      variables: { byModel: [] },
      condition: {
        all: [
          { field: 'var.firmwareFile', op: 'exists', label: 'a firmware file is set for the model' },
          { field: 'registry.softwareVersion', op: 'versionLt', value: { var: 'minVersion' }, label: 'software version below the model\'s minimum' },
        ],
      },
      action: {
        kind: 'fix',
        tasks: [{ name: 'download', fileId: '{{vars.firmwareFile}}' }],
        verify: [{ param: '{{root}}DeviceInfo.SoftwareVersion', op: 'versionGte', value: { var: 'minVersion' } }],
      },
      cooldownSeconds: DAY,
      window: { start: '02:00', end: '05:00' },
      rollout: { maxPerRun: 200, canary: { share: 0.05, minFixedRatio: 0.9 } },
      retry: { maxAttempts: 3, backoffSeconds: 6 * 3600 },
      verifyWithinSeconds: 7 * DAY,
    },
  },
  {
    id: 'periodic-inform',
    version: 1,
    definition: {
      name: 'Periodic inform disabled or its interval too long',
      description: 'A device that does not check in periodically cannot be managed: periodic inform is switched back on with the configured interval.',
      enabled: true,
      variables: { defaults: { maxIntervalS: DAY, intervalS: 3600 } },
      condition: {
        any: [
          { field: 'registry.param.ManagementServer.PeriodicInformEnable', op: 'eq', value: false, label: 'periodic inform disabled' },
          {
            field: 'registry.param.ManagementServer.PeriodicInformInterval',
            op: 'gt',
            value: { var: 'maxIntervalS' },
            label: 'periodic inform interval too long',
          },
        ],
      },
      action: {
        kind: 'fix',
        tasks: [
          {
            name: 'setParameterValues',
            parameterValues: [
              { name: '{{root}}ManagementServer.PeriodicInformEnable', value: true, type: 'xsd:boolean' },
              { name: '{{root}}ManagementServer.PeriodicInformInterval', value: '{{vars.intervalS}}', type: 'xsd:unsignedInt' },
            ],
          },
        ],
        verify: [
          { param: '{{root}}ManagementServer.PeriodicInformEnable', op: 'eq', value: true },
          { param: '{{root}}ManagementServer.PeriodicInformInterval', op: 'lte', value: { var: 'maxIntervalS' } },
        ],
      },
      cooldownSeconds: DAY,
      rollout: { maxPerRun: 1000 },
      retry: { maxAttempts: 3, backoffSeconds: 3600 },
      refresh: { params: ['ManagementServer.PeriodicInformEnable', 'ManagementServer.PeriodicInformInterval'], maxAgeSeconds: DAY },
    },
  },
  {
    id: 'frequent-disconnects',
    version: 1,
    definition: {
      name: 'Frequent network disconnects',
      description:
        'Many network disconnects a day — as the connection reports count them (WAN reconnections the device\'s uptimes told, else silences and unrequested boots), ' +
        'or WAN reconnections seen in the diagnostic snapshots: a reboot at night.',
      enabled: true,
      variables: { defaults: { maxDisconnectsPerDay: 5 } },
      condition: {
        any: [
          { field: 'derived.wanReconnects24h', op: 'gte', value: { var: 'maxDisconnectsPerDay' }, label: 'WAN reconnections in 24 h' },
          { field: 'conn.perDay.disconnects', op: 'gte', value: { var: 'maxDisconnectsPerDay' }, label: 'network disconnects in the last 24 h' },
        ],
      },
      action: { kind: 'fix', tasks: [{ name: 'reboot' }] },
      cooldownSeconds: 7 * DAY,
      window: { start: '03:00', end: '05:00' },
      rollout: { maxPerRun: 200, canary: { share: 0.05, minFixedRatio: 0.8 } },
      retry: { maxAttempts: 2, backoffSeconds: DAY },
    },
  },
  {
    id: 'unexpected-restarts',
    version: 1,
    definition: {
      name: 'Unexpected restarts',
      description: 'Devices that boot without the ACS asking (BOOT without M Reboot) upload their vendor log for analysis (needs ACS_LOG_UPLOAD_URL).',
      enabled: true,
      variables: { defaults: { maxUnexpectedBootsPerDay: 2 } },
      condition: { field: 'conn.perDay.unexpectedBoots', op: 'gte', value: { var: 'maxUnexpectedBootsPerDay' }, label: 'unexpected boots per day' },
      action: { kind: 'fix', tasks: [{ name: 'upload', fileType: '2 Vendor Log File', url: '{{config.logUploadUrl}}' }], connectionRequest: true },
      cooldownSeconds: 3 * DAY,
      rollout: { maxPerRun: 500 },
      retry: { maxAttempts: 2, backoffSeconds: 3600 },
    },
  },
  {
    id: 'wifi-driver-error',
    version: 1,
    definition: {
      name: 'Wi-Fi driver error',
      description: 'A radio reporting driver errors is restarted (disabled, then enabled again).',
      enabled: true,
      variables: { defaults: { maxDriverErrors: 0 } },
      condition: {
        field: ['diag.WiFi.Radio.{i}.X_VENDOR_DriverErrors', 'diag.LANDevice.{i}.WLANConfiguration.{i}.X_VENDOR_DriverErrors'],
        op: 'gt',
        value: { var: 'maxDriverErrors' },
        label: 'Wi-Fi driver errors',
      },
      action: {
        kind: 'fix',
        tr181: [
          { name: 'setParameterValues', parameterValues: [{ name: 'Device.WiFi.Radio.{{match.i1}}.Enable', value: false }] },
          { name: 'setParameterValues', parameterValues: [{ name: 'Device.WiFi.Radio.{{match.i1}}.Enable', value: true }] },
        ],
        tr098: [
          { name: 'setParameterValues', parameterValues: [{ name: '{{match.object}}Enable', value: false }] },
          { name: 'setParameterValues', parameterValues: [{ name: '{{match.object}}Enable', value: true }] },
        ],
        verify: [{ param: '{{match.object}}Enable', op: 'eq', value: true }],
      },
      cooldownSeconds: DAY,
      rollout: { maxPerRun: 500 },
      retry: { maxAttempts: 3, backoffSeconds: 3600 },
    },
  },
  {
    id: 'wifi-coverage',
    version: 1,
    definition: {
      name: 'Short Wi-Fi coverage',
      description: 'Associated devices with a weak signal: automatic channel selection and full transmit power on that radio.',
      enabled: true,
      variables: { defaults: { minSignalDbm: -75 } },
      condition: {
        field: ['diag.WiFi.AccessPoint.{i}.AssociatedDevice.{i}.SignalStrength', 'diag.LANDevice.{i}.WLANConfiguration.{i}.AssociatedDevice.{i}.X_VENDOR_SignalStrength'],
        op: 'lt',
        value: { var: 'minSignalDbm' },
        label: 'weak associated-device signal (dBm)',
      },
      action: {
        kind: 'fix',
        tr181: [
          {
            name: 'setParameterValues',
            parameterValues: [
              { name: 'Device.WiFi.Radio.{{match.i1}}.AutoChannelEnable', value: true },
              { name: 'Device.WiFi.Radio.{{match.i1}}.TransmitPower', value: 100, type: 'xsd:int' },
            ],
          },
        ],
        tr098: [
          {
            name: 'setParameterValues',
            parameterValues: [
              { name: 'InternetGatewayDevice.LANDevice.{{match.i1}}.WLANConfiguration.{{match.i2}}.AutoChannelEnable', value: true },
              { name: 'InternetGatewayDevice.LANDevice.{{match.i1}}.WLANConfiguration.{{match.i2}}.TransmitPower', value: 100, type: 'xsd:unsignedInt' },
            ],
          },
        ],
      },
      cooldownSeconds: 3 * DAY,
      rollout: { maxPerRun: 500 },
      retry: { maxAttempts: 2, backoffSeconds: 3600 },
    },
  },
  {
    id: 'wifi-weak-security',
    version: 1,
    definition: {
      name: 'Open or WEP Wi-Fi, or a weak password',
      description: 'Advisory only: the owner chooses a new password; the ACS never invents one.',
      enabled: true,
      condition: {
        any: [
          { field: 'diag.WiFi.AccessPoint.{i}.Security.ModeEnabled', op: 'in', value: WEAK_MODES, label: 'open or WEP security (TR-181)' },
          { field: 'diag.LANDevice.{i}.WLANConfiguration.{i}.BeaconType', op: 'in', value: ['None', 'Basic'], label: 'open or WEP security (TR-098)' },
          {
            field: ['diag.WiFi.AccessPoint.{i}.Security.X_VENDOR_PasswordStrength', 'diag.LANDevice.{i}.WLANConfiguration.{i}.X_VENDOR_PasswordStrength'],
            op: 'in',
            value: ['weak', 'Weak', 'very-weak', 'VeryWeak', '0', '1'],
            label: 'weak Wi-Fi password (device\'s own rating)',
          },
        ],
      },
      action: {
        kind: 'advisory',
        advice:
          'Your Wi-Fi is open, uses outdated WEP encryption or has a weak password. Switch it to WPA2 or WPA3 and choose a new, long password in the router\'s app or web page.',
      },
      cooldownSeconds: 30 * DAY,
      rollout: { maxPerRun: 10_000 },
    },
  },
  {
    id: 'data-limit',
    version: 1,
    definition: {
      name: 'Data use over the plan\'s limit',
      description: 'Advisory only. The limit is the variable dataLimitBytes (per model, or a device tag var:dataLimitBytes:<bytes>).',
      enabled: true,
      variables: { defaults: { dataLimitBytes: 100 * 1024 ** 3 } },
      condition: {
        field: [
          'diag.Cellular.Interface.{i}.Stats.BytesSent',
          'diag.Cellular.Interface.{i}.Stats.BytesReceived',
          'diag.WANDevice.{i}.WANCommonInterfaceConfig.TotalBytesSent',
          'diag.WANDevice.{i}.WANCommonInterfaceConfig.TotalBytesReceived',
        ],
        op: 'gt',
        agg: 'sum',
        value: { var: 'dataLimitBytes' },
        label: 'bytes sent and received on the WAN/mobile interfaces',
      },
      action: {
        kind: 'advisory',
        advice: 'Your data use is over your plan\'s limit. Check which devices use the most data, or ask your provider about a larger plan.',
      },
      cooldownSeconds: 7 * DAY,
      rollout: { maxPerRun: 10_000 },
    },
  },
];
