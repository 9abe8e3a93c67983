// What the connection reports keep of an Inform in the session record (issue 6): the software
// version (reports break down by model and version as it was then) and, when the device sends
// the uptime of its WAN connection, when that connection came up — the device's own account of
// its network disconnects. Pure.
import type { ParameterValueStruct } from '../../cwmp/types';

/**
 * WAN connection uptimes in seconds: TR-098 WANIPConnection/WANPPPConnection.{i}.Uptime, and
 * TR-181 PPP.Interface.{i}.LastChange / IP.Interface.{i}.LastChange (seconds since the status
 * last changed; a device that sends one in its Inform sends its WAN interface's).
 */
const UPTIME = [
  /^InternetGatewayDevice\.WANDevice\.\d+\.WANConnectionDevice\.\d+\.WAN(?:IP|PPP)Connection\.\d+\.Uptime$/,
  /^Device\.(?:PPP|IP)\.Interface\.\d+\.LastChange$/,
];

export interface SessionFacts {
  softwareVersion?: string;
  /** Epoch ms at which the WAN connection came up (now − the smallest uptime reported). */
  wanUpAt?: number;
}

export function sessionFacts(params: readonly ParameterValueStruct[], now: number): SessionFacts {
  const out: SessionFacts = {};
  let uptime = Infinity;
  for (const p of params) {
    if (p.name.endsWith('DeviceInfo.SoftwareVersion') && p.value) out.softwareVersion = p.value.slice(0, 64);
    else if (UPTIME.some((r) => r.test(p.name))) {
      const v = Number(p.value);
      // 0 means "not up" on most devices; a value over ten years is no uptime.
      if (Number.isFinite(v) && v > 0 && v < 10 * 365 * 86400) uptime = Math.min(uptime, v);
    }
  }
  if (uptime !== Infinity) out.wanUpAt = Math.round((now - uptime * 1000) / 1000) * 1000;
  return out;
}
