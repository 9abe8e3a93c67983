// Parsed Informs, as the codec hands them to the registry, for tests that call it directly.
import type { Inform } from '../../cwmp/types';

/** An Inform from device 00AAAA-PC-<serial> carrying these [name, value, type] parameters. */
export function parsedInform(serial: string, params: [name: string, value: string, type: string][], event = '2 PERIODIC'): Inform {
  return {
    method: 'Inform',
    deviceId: { manufacturer: 'M', oui: '00AAAA', productClass: 'PC', serialNumber: serial },
    events: [{ eventCode: event, commandKey: '' }],
    maxEnvelopes: 1,
    currentTime: new Date().toISOString(),
    retryCount: 0,
    parameterList: params.map(([name, value, type]) => ({ name, value, type })),
  };
}
