// One simulated router living like a device: the test suite's CPE (test/support/cpe.ts) with a
// life around it. It boots (0 BOOTSTRAP + 1 BOOT), informs periodically with the
// PeriodicInformEnable/Interval of its own data model (so the ACS can change them), answers
// connection requests, does what the ACS asked right after the session (reboot, factory reset,
// transfers: a firmware image "installs" the version in its file name) and reports it in a new
// session, and retries an Inform that got no InformResponse with the back-off of TR-069 3.2.1.1.
// Sessions of one router never overlap: wakes and timers that come while one runs are merged
// into the next. tools/sim-cpe.ts runs one router, tools/sim/fleet.ts thousands.
import type { EventStruct, FaultStruct } from '../../cwmp/types';
import { TestCpe, type CpeOptions, type DownloadRequest, type ScheduleDownloadRequest, type SessionOptions, type SessionResult } from '../../test/support/cpe';
import { CONNECTION_REQUEST, type Credentials } from '../../test/support/cr-listener';
import type { Rng } from './random';

const PERIODIC: EventStruct = { eventCode: '2 PERIODIC', commandKey: '' };
const BOOT: EventStruct = { eventCode: '1 BOOT', commandKey: '' };

/** ACS requests a router carries out after the session, reporting the outcome in a new one. */
const AFTER_SESSION = new Set(['Reboot', 'FactoryReset', 'Download', 'Upload', 'ScheduleDownload']);
/** How long after such a session the router is back (a real one takes longer; a demo should not). */
const BACK_AFTER_MS = 1000;
/** stop() waits this long for a session whose connection it cut (a retried request may still be on its way). */
const STOP_GRACE_MS = 2000;
/** Share of dropped sessions continued on a new connection a few seconds later; the others are given up. */
const RESUME_SHARE = 0.5;

/** The version a firmware file carries in its name: "fw-2.1.0.bin", "HG2400-4.1.0.bin" → the last dotted number. */
function versionInFileName(name: string): string | undefined {
  const all = name.match(/\d+(?:\.\d+)+/g);
  return all?.[all.length - 1];
}

export interface Download {
  url: string;
  bytes: number;
  /** The software version installed, for a firmware image whose name carries one. */
  version?: string;
}

export interface SimRouterOptions {
  /** The CPE (its data model must be complete: the router reads its periodic inform settings). */
  cpe: Omit<CpeOptions, 'bootstrap' | 'downloadHandler'>;
  random?: Rng;
  /** Each periodic wait varies by up to this fraction of the interval either way; default 0. */
  jitter?: number;
  /** Right before each new session: change values (counters, signal …); `drop: true` loses the connection after the InformResponse. */
  beforeSession?: (router: SimRouter) => { drop?: boolean } | void;
  /** Answers to ACS requests (default: the CPE's own handler). */
  onRequest?: SessionOptions['onRequest'];
  /** After each session (a resumed one reports again). */
  onSession?: (result: SessionResult, router: SimRouter) => void;
  onDownload?: (download: Download, router: SimRouter) => void;
  /** Runs each session, e.g. to cap how many a fleet runs at once; default: at once. */
  limit?: <T>(run: () => Promise<T>) => Promise<T>;
}

export class SimRouter {
  readonly cpe: TestCpe;
  private readonly random: Rng;
  /** Events of the session waiting to start (merged), or null when none waits. */
  private waiting: EventStruct[] | null = null;
  private draining: Promise<void> | undefined;
  private periodic: NodeJS.Timeout | undefined;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly sleepers = new Set<() => void>();
  private stopped = false;

  constructor(private readonly o: SimRouterOptions) {
    this.random = o.random ?? Math.random;
    this.cpe = new TestCpe({ ...o.cpe, bootstrap: true, downloadHandler: (req) => this.download(req) });
  }

  get id(): string {
    return this.cpe.id;
  }

  /** Boots now and informs periodically from then on, the first periodic inform after firstPeriodicMs (default one interval). */
  start(firstPeriodicMs?: number): void {
    this.request();
    this.armPeriodic(firstPeriodicMs ?? this.intervalMs());
  }

  /** A connection request the router accepted: a session with 6 CONNECTION REQUEST. */
  wake(): void {
    this.request([CONNECTION_REQUEST]);
  }

  /** An unexpected restart (power cut, crash): 1 BOOT without M Reboot, uptime from zero. */
  reboot(): void {
    this.cpe.model.bootAt = Date.now();
    this.request([BOOT]);
  }

  /** The connection request credentials the ACS gave the router (at BOOTSTRAP). */
  credentials(): Credentials {
    return {
      username: this.cpe.get('ManagementServer.ConnectionRequestUsername') ?? '',
      password: this.cpe.get('ManagementServer.ConnectionRequestPassword') ?? '',
    };
  }

  /** No new sessions; the running one loses its connection (an ACS that stopped answering must not hold up the stop). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.periodic);
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const wakeUp of this.sleepers) wakeUp();
    this.cpe.drop();
    let grace: NodeJS.Timeout | undefined;
    await Promise.race([this.draining, new Promise((resolve) => (grace = setTimeout(resolve, STOP_GRACE_MS)))]);
    clearTimeout(grace);
    this.cpe.disconnect();
  }

  // ---- scheduling ---------------------------------------------------------------------------

  private intervalMs(): number {
    const s = Number(this.cpe.get('ManagementServer.PeriodicInformInterval'));
    return (Number.isFinite(s) && s > 0 ? s : 3600) * 1000;
  }

  private armPeriodic(ms: number): void {
    if (this.stopped) return;
    this.periodic = setTimeout(() => {
      // Read at each turn: the ACS may have switched periodic informs on or off, or changed the interval.
      if (this.cpe.get('ManagementServer.PeriodicInformEnable') !== 'false') this.request([PERIODIC]);
      const j = this.o.jitter ?? 0;
      this.armPeriodic(this.intervalMs() * (1 + j * (2 * this.random() - 1)));
    }, ms);
  }

  private later(ms: number, run: () => void): void {
    if (this.stopped) return;
    const t = setTimeout(() => {
      this.timers.delete(t);
      run();
    }, ms);
    this.timers.add(t);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.sleepers.delete(done);
        resolve();
      };
      const t = setTimeout(done, ms);
      this.sleepers.add(done);
    });
  }

  /** Asks for a session with these events (none: what the CPE has pending, else 2 PERIODIC). */
  private request(events: EventStruct[] = []): void {
    if (this.stopped) return;
    if (this.waiting) {
      for (const e of events) if (!this.waiting.some((w) => w.eventCode === e.eventCode)) this.waiting.push(e);
      return;
    }
    this.waiting = [...events];
    this.draining ??= this.drain().finally(() => (this.draining = undefined));
  }

  private async drain(): Promise<void> {
    while (this.waiting && !this.stopped) {
      const events = this.waiting;
      this.waiting = null;
      await this.run(events);
    }
  }

  // ---- one session --------------------------------------------------------------------------

  private async run(events: EventStruct[]): Promise<void> {
    const plan = this.o.beforeSession?.(this);
    const onRequest = this.o.onRequest;
    const limit = this.o.limit ?? ((f) => f());
    // A router stopped while its session waited for a turn does not start it.
    const session = (opts: SessionOptions) => limit(async () => (this.stopped ? undefined : this.cpe.session(opts)));
    let r = await session({ ...(events.length ? { events } : {}), onRequest, dropAfterInform: plan?.drop === true });
    // A session cut short by stop() is not the ACS's doing: not reported.
    if (!r || this.stopped) return;
    this.o.onSession?.(r, this);
    let asked = r.acsRequests;
    if (r.ended === 'dropped') {
      // The network came back after a few seconds: go on with the session (the ACS parked it), or give up on it.
      if (this.random() < RESUME_SHARE) {
        await this.sleep(1000 + this.random() * 3000);
        if (this.stopped) return;
        r = await session({ resume: true, onRequest });
        if (!r || this.stopped) return;
        this.o.onSession?.(r, this);
        asked = asked.concat(r.acsRequests);
      } else {
        this.cpe.disconnect();
      }
    }
    if (asked.some((q) => AFTER_SESSION.has(q.method))) this.later(BACK_AFTER_MS, () => this.request());
    // No InformResponse: try again with the same events after the CPE's retry wait.
    if (this.cpe.retryCount > 0) this.later(this.retryWaitMs(r.retryAfter), () => this.cpe.retryCount > 0 && this.request(events));
  }

  /**
   * An overloaded ACS's Retry-After (seconds, spread by up to a fifth so a shed crowd does not come
   * back at once), else TR-069 3.2.1.1: the n-th retry waits between m·(k/1000)^(n-1) and
   * m·(k/1000)^n seconds (n capped at 10).
   */
  private retryWaitMs(retryAfter: string | undefined): number {
    const asked = Number(retryAfter);
    if (asked > 0) return asked * 1000 * (1 + 0.2 * this.random());
    const m = Number(this.cpe.get('ManagementServer.CWMPRetryMinimumWaitInterval') ?? 5) || 5;
    const k = (Number(this.cpe.get('ManagementServer.CWMPRetryIntervalMultiplier') ?? 2000) || 2000) / 1000;
    const n = Math.min(this.cpe.retryCount, 10);
    const lo = m * k ** (n - 1);
    return (lo + this.random() * (m * k ** n - lo)) * 1000;
  }

  /** Fetches the file; a firmware image installs the version its name carries. */
  private async download(req: DownloadRequest | ScheduleDownloadRequest): Promise<void | FaultStruct> {
    const res = await fetch(req.url);
    if (!res.ok) return { faultCode: 9016, faultString: `HTTP ${res.status} from the file server` };
    const bytes = (await res.arrayBuffer()).byteLength;
    const name = (req.method === 'Download' && req.targetFileName) || new URL(req.url).pathname.split('/').pop() || '';
    const version = req.fileType.startsWith('1 ') ? versionInFileName(decodeURIComponent(name)) : undefined;
    const p = version && this.cpe.params.get(`${this.cpe.root}DeviceInfo.SoftwareVersion`);
    if (p) p.value = version!;
    this.o.onDownload?.({ url: req.url, bytes, ...(version ? { version } : {}) }, this);
  }
}
