// A fleet of simulated routers in one process: thousands of SimRouters (tools/sim/router.ts),
// each with its household's values and faults (tools/sim/profile.ts), one connection request
// listener for all of them (/cr/<serial>, each device's own Digest credentials), boots spread
// over a ramp, periodic informs with jitter, unexpected restarts, connections lost mid-session,
// and a cap on sessions in flight so the simulator never becomes the bottleneck it measures.
import { loadConfig } from '../../src/config';
import { CrListener } from '../../test/support/cr-listener';
import { DeviceProfile } from './profile';
import { chance, exponential } from './random';
import { SimRouter } from './router';

export interface FleetOptions {
  /** The ACS's CWMP URL. */
  acsUrl: string;
  devices: number;
  /** PeriodicInformInterval the routers start with (s). */
  intervalS: number;
  /** Share of owners who joined the diagnostics program (the routers report it in their setting). */
  optIn: number;
  seed: number;
  /** Each periodic wait varies by up to this fraction of the interval; default 0.1. */
  jitter?: number;
  /** Share of sessions whose connection is lost after the InformResponse; default 0.02. */
  dropRate?: number;
  /** Mean time between unexpected restarts of a healthy router (s; 0: never); default 6 h. */
  rebootMeanS?: number;
  /** Multiplies the share of each fault (tools/sim/profile.ts FAULTS); default 1, 0: none. */
  faults?: number;
  /** Serials are this prefix and the index, zero-padded; default "SIM". Fleets sharing an ACS need different ones. */
  serialPrefix?: string;
  /** Boots are spread over this many seconds; default devices / 10 (first contacts are the heaviest sessions), at most the interval. */
  rampS?: number;
  /** Most sessions in flight at once; default 64. */
  concurrency?: number;
  /** Connection request listener: address and port; default 127.0.0.1, any free port. */
  crHost?: string;
  crPort?: number;
  /** Credentials for the ACS's CPE authentication (ACS_CPE_USERNAME / ACS_CPE_PASSWORD). */
  username?: string;
  password?: string;
  /** The program setting's names; default the ACS's defaults (ACS_CONSENT_PARAM_TR181 / _TR098). */
  consentParam?: { tr181: string; tr098: string };
}

export interface FleetDevice {
  profile: DeviceProfile;
  router: SimRouter;
}

export interface FleetCounts {
  /** Routers whose Inform the ACS answered at least once. */
  registered: number;
  sessionsOk: number;
  sessionsFailed: number;
  /** Sessions whose connection the simulator dropped on purpose. */
  dropped: number;
  /** Connection requests answered 200 / refused (wrong credentials). */
  crAnswered: number;
  crRefused: number;
  downloads: number;
  /** Unexpected restarts. */
  reboots: number;
}

const FLAKY_DROP_RATE = 0.15;

/** At most n runs at a time, the others wait in order. */
class Slots {
  private free: number;
  private readonly waiting: (() => void)[] = [];
  constructor(n: number) {
    this.free = n;
  }
  async run<T>(f: () => Promise<T>): Promise<T> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await f();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    }
  }
}

export class Fleet {
  readonly devices: FleetDevice[] = [];
  private readonly bySerial = new Map<string, FleetDevice>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly registered = new Set<string>();
  private readonly n = { sessionsOk: 0, sessionsFailed: 0, dropped: 0, downloads: 0, reboots: 0 };
  /** Failed sessions by reason ("fault 8005", "HTTP 503", "timeout after 30000 ms" …). */
  private readonly failures = new Map<string, number>();
  private last = { at: Date.now(), sessions: 0 };

  private constructor(
    private readonly opts: FleetOptions,
    /** The shared connection request listener. */
    readonly cr: CrListener,
  ) {}

  /** Builds the fleet and starts it: the routers boot over the ramp. */
  static async start(o: FleetOptions): Promise<Fleet> {
    let fleet: Fleet | undefined;
    const cr = await CrListener.start({
      host: o.crHost,
      port: o.crPort,
      realm: 'router',
      devices: (serial) => {
        const d = fleet?.bySerial.get(serial);
        return d && { credentials: () => d.router.credentials(), onWake: () => d.router.wake() };
      },
    });
    fleet = new Fleet(o, cr);
    fleet.build();
    fleet.boot();
    return fleet;
  }

  private build(): void {
    const o = this.opts;
    const defaults = loadConfig({});
    const consentParam = o.consentParam ?? { tr181: defaults.consentParamTr181, tr098: defaults.consentParamTr098 };
    const slots = new Slots(o.concurrency ?? 64);
    for (let index = 0; index < o.devices; index++) {
      const profile = new DeviceProfile({
        seed: o.seed,
        index,
        serialPrefix: o.serialPrefix ?? 'SIM',
        intervalS: o.intervalS,
        optIn: o.optIn,
        faults: o.faults ?? 1,
        consentParam,
        crUrl: (serial) => this.cr.urlFor(serial),
      });
      const m = profile.model;
      const flaky = profile.faults.has('flaky');
      const router = new SimRouter({
        cpe: {
          url: o.acsUrl,
          deviceId: { manufacturer: m.manufacturer, oui: m.oui, productClass: m.productClass, serialNumber: profile.serial },
          dataModel: m.dataModel,
          params: profile.params,
          username: o.username,
          password: o.password,
          // Thousands of routers: keep no history of ACS requests.
          recordReceived: false,
        },
        random: profile.random,
        jitter: o.jitter ?? 0.1,
        limit: (run) => slots.run(run),
        beforeSession: (r) => {
          profile.evolve(r.cpe);
          // A flaky line loses the connection far more often than the fleet's usual share.
          return { drop: chance(profile.random, flaky ? FLAKY_DROP_RATE : (o.dropRate ?? 0.02)) };
        },
        onRequest: (req, _id, cpe) => {
          const answer = cpe.handle(req);
          if (req.method === 'SetParameterValues' && answer.method === 'SetParameterValuesResponse') profile.applied(cpe, req.parameterList);
          return answer;
        },
        onSession: (r, router) => {
          if (r.informResponse) this.registered.add(router.id);
          if (r.ok) this.n.sessionsOk++;
          else if (r.ended === 'dropped') this.n.dropped++;
          else {
            this.n.sessionsFailed++;
            const why = r.fault ? `fault ${r.fault.code}` : r.ended === 'http-error' ? `HTTP ${r.httpStatus}` : (r.error?.message ?? r.ended);
            this.failures.set(why, (this.failures.get(why) ?? 0) + 1);
          }
        },
        onDownload: () => void this.n.downloads++,
      });
      const d = { profile, router };
      this.devices.push(d);
      this.bySerial.set(profile.serial, d);
    }
  }

  private later(ms: number, run: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      run();
    }, ms);
    this.timers.add(t);
  }

  private boot(): void {
    const o = this.opts;
    const rampMs = (o.rampS ?? Math.min(o.intervalS, o.devices / 10)) * 1000;
    this.devices.forEach((d, i) =>
      this.later((i / this.devices.length) * rampMs, () => {
        // Periodic informs keep their own phase within the interval, as PeriodicInformTime spreads them.
        d.router.start(d.profile.random() * o.intervalS * 1000);
        this.armReboot(d);
      }),
    );
  }

  private armReboot(d: FleetDevice): void {
    // A flaky router restarts every couple of informs: enough for the shipped rules' daily thresholds within minutes.
    const mean = d.profile.faults.has('flaky') ? Math.max(2 * this.opts.intervalS, 60) : (this.opts.rebootMeanS ?? 6 * 3600);
    if (mean <= 0) return;
    this.later(exponential(d.profile.random, mean) * 1000, () => {
      this.n.reboots++;
      d.router.reboot();
      this.armReboot(d);
    });
  }

  counts(): FleetCounts {
    return { registered: this.registered.size, ...this.n, crAnswered: this.cr.accepted, crRefused: this.cr.rejected };
  }

  /** One line of progress: totals, and sessions per second since the previous line. */
  summary(): string {
    const c = this.counts();
    const now = Date.now();
    const sessions = c.sessionsOk + c.sessionsFailed + c.dropped;
    const rate = (sessions - this.last.sessions) / Math.max(0.001, (now - this.last.at) / 1000);
    this.last = { at: now, sessions };
    const time = new Date(now).toISOString().slice(11, 19);
    const top = [...this.failures].sort((a, b) => b[1] - a[1]).slice(0, 2);
    const why = top.length ? ` (${top.map(([reason, k]) => `${k}× ${reason.slice(0, 40)}`).join(', ')}${this.failures.size > 2 ? ', …' : ''})` : '';
    return (
      `${time}  routers ${c.registered}/${this.devices.length} registered  ` +
      `sessions ${c.sessionsOk} ok, ${c.sessionsFailed} failed${why}, ${c.dropped} dropped (${rate.toFixed(1)}/s)  ` +
      `CRs ${c.crAnswered} answered${c.crRefused ? `, ${c.crRefused} refused` : ''}  downloads ${c.downloads}  reboots ${c.reboots}`
    );
  }

  /** Stops every router (cutting running sessions short) and the listener. */
  async stop(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    await Promise.all(this.devices.map((d) => d.router.stop()));
    await this.cr.close();
  }
}
