// Fleet simulator: thousands of simulated routers in one process against an ACS (development and
// demos; traffic goes where --acs says). TR-098 and TR-181 models of several vendors with Wi-Fi,
// WAN, mobile and usage values, some with the faults the shipped fix rules look for; periodic
// informs with jitter, boots, unexpected restarts, connections lost mid-session, firmware
// downloads, and one connection request listener for all (http://<cr-host>:<cr-port>/cr/<serial>).
// The same --seed gives the same fleet. See tools/sim/.
//
//   npm run build && node dist/tools/fleet-sim.js --acs http://127.0.0.1:7547/ --devices 300 --interval 60 --opt-in 0.5 --seed 1
import { parseArgs } from 'node:util';
import { Fleet, type FleetOptions } from './sim/fleet';

/** The fleet's flags (tools/demo.ts takes them too). */
export const FLEET_FLAGS = {
  devices: { type: 'string', default: '300' },
  interval: { type: 'string', default: '300' },
  'opt-in': { type: 'string', default: '0.5' },
  seed: { type: 'string', default: '1' },
  jitter: { type: 'string', default: '0.1' },
  'drop-rate': { type: 'string', default: '0.02' },
  'reboot-mean': { type: 'string', default: String(6 * 3600) },
  faults: { type: 'string', default: '1' },
  'serial-prefix': { type: 'string', default: 'SIM' },
  ramp: { type: 'string' },
  concurrency: { type: 'string', default: '64' },
  'cr-host': { type: 'string', default: '127.0.0.1' },
  'cr-port': { type: 'string', default: '0' },
  report: { type: 'string', default: '5' },
} as const;

export const FLEET_USAGE = `  --devices N          routers (default 300)
  --interval S         periodic inform interval they start with (default 300)
  --opt-in F           share of owners in the diagnostics program, 0..1 (default 0.5)
  --seed N             same seed, same fleet (default 1)
  --jitter F           periodic informs vary by up to this share of the interval (default 0.1)
  --drop-rate F        share of sessions losing their connection after the InformResponse (default 0.02)
  --reboot-mean S      mean time between unexpected restarts of a healthy router (default 21600; 0: never)
  --faults F           scales the share of faulty routers (default 1; 0: none)
  --serial-prefix P    serials are P0000000, P0000001 … (default SIM)
  --ramp S             spread the boots over S seconds (default devices/10, at most the interval)
  --concurrency N      most sessions in flight (default 64)
  --cr-host H          connection request listener address, also in the URLs (default 127.0.0.1)
  --cr-port P          its port (default: a free one)
  --report S           a progress line every S seconds (default 5; 0: none)`;

type FlagValues = { [K in keyof typeof FLEET_FLAGS]?: string };

function num(name: string, raw: string | undefined, check: (n: number) => boolean): number {
  const n = Number(raw);
  if (raw === undefined || raw.trim() === '' || !Number.isFinite(n) || !check(n)) throw new Error(`--${name}: invalid value "${raw}"`);
  return n;
}

const share = (n: number) => n >= 0 && n <= 1;
const count = (n: number) => Number.isInteger(n) && n >= 0;

/** FleetOptions from parsed flags (throws with the flag's name on a bad value). */
export function fleetOptions(v: FlagValues, acsUrl: string): FleetOptions & { reportS: number } {
  return {
    acsUrl,
    devices: num('devices', v.devices, (n) => Number.isInteger(n) && n > 0),
    intervalS: num('interval', v.interval, (n) => n >= 1),
    optIn: num('opt-in', v['opt-in'], share),
    seed: num('seed', v.seed, Number.isInteger),
    jitter: num('jitter', v.jitter, share),
    dropRate: num('drop-rate', v['drop-rate'], share),
    rebootMeanS: num('reboot-mean', v['reboot-mean'], (n) => n >= 0),
    faults: num('faults', v.faults, (n) => n >= 0),
    serialPrefix: v['serial-prefix'] ?? 'SIM',
    ...(v.ramp !== undefined ? { rampS: num('ramp', v.ramp, (n) => n >= 0) } : {}),
    concurrency: num('concurrency', v.concurrency, (n) => Number.isInteger(n) && n > 0),
    crHost: v['cr-host'],
    crPort: num('cr-port', v['cr-port'], count),
    reportS: num('report', v.report, (n) => n >= 0),
  };
}

/** Prints a progress line every reportS seconds; returns the stop function. */
export function reportProgress(fleet: Fleet, reportS: number, print: (line: string) => void): () => void {
  if (reportS <= 0) return () => undefined;
  const t = setInterval(() => print(fleet.summary()), reportS * 1000);
  return () => clearInterval(t);
}

/** "300 routers (150 in the program, 61 with faults): 4 models …" */
export function describeFleet(fleet: Fleet): string {
  const d = fleet.devices;
  const models = new Map<string, number>();
  for (const x of d) models.set(x.profile.model.productClass, (models.get(x.profile.model.productClass) ?? 0) + 1);
  const joined = d.filter((x) => x.profile.optedIn).length;
  const faulty = d.filter((x) => x.profile.faults.size > 0).length;
  const list = [...models].map(([m, n]) => `${n} ${m}`).join(', ');
  return `${d.length} routers (${joined} in the diagnostics program, ${faulty} with faults): ${list}`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { ...FLEET_FLAGS, acs: { type: 'string', default: 'http://127.0.0.1:7547/' }, username: { type: 'string' }, password: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    strict: true,
  });
  if (values.help) {
    console.log(`usage: node dist/tools/fleet-sim.js [--acs URL] [flags]\n  --acs URL            the ACS's CWMP URL (default http://127.0.0.1:7547/)\n  --username, --password  CPE credentials for the ACS (ACS_CPE_USERNAME/PASSWORD)\n${FLEET_USAGE}`);
    return;
  }
  const o = fleetOptions(values, values.acs);
  const fleet = await Fleet.start({ ...o, username: values.username, password: values.password });
  console.log(`fleet-sim: ${describeFleet(fleet)}`);
  console.log(`fleet-sim: → ${o.acsUrl}; connection requests at ${fleet.cr.urlFor('')}<serial>`);
  const stopReports = reportProgress(fleet, o.reportS, (line) => console.log(line));
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    stopReports();
    await fleet.stop();
    console.log(fleet.summary());
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
}

if (require.main === module) {
  main().catch((err) => {
    console.error(`fleet-sim: ${(err as Error).message}`);
    process.exit(2);
  });
}
