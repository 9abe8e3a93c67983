// Connection request credentials: owner of the `connreq_credentials` collection.
//
// At BOOTSTRAP the ACS gives each device a random ConnectionRequestUsername/Password with a
// SetParameterValues on its RPC queue, so that no two devices share a password and none keeps
// a factory default. The pair is stored encrypted (never in the devices document, which the
// operator API serves) and becomes `active` only once the device has accepted it: until then
// the previous pair, if any, is still what the device expects.
import { randomBytes } from 'node:crypto';
import type { Collection, Db } from 'mongodb';
import { dataModelOf } from '../cwmp/device-id';
import type { Inform } from '../cwmp/types';
import type { Logger } from './logger';
import type { QueueEntry, QueueOutcome, RpcQueue } from './rpc-queue';
import type { Secrets } from './secrets';
import type { SessionHooks } from './session-engine';

export interface CrCredentials {
  username: string;
  password: string;
}

interface CredentialsDoc {
  _id: string;
  /** Encrypted {username, password} the device accepted. */
  active?: string;
  activatedAt?: Date;
  /** Encrypted pair sent to the device and not confirmed yet. */
  pending?: { value: string; queueId: string; at: Date };
}

export const PROVISION_ORIGIN = 'cr-provision';

export class ConnectionRequestCredentials {
  readonly col: Collection<CredentialsDoc>;

  constructor(
    db: Db,
    private readonly secrets: Secrets,
    private readonly queue: RpcQueue,
    private readonly log: Logger,
  ) {
    this.col = db.collection<CredentialsDoc>('connreq_credentials');
  }

  /**
   * Hooks into the RPC queue (the device's answer) and, when provisioning is on, the session
   * engine (BOOTSTRAP). Answers are always handled: a pair sent before a restart with
   * provisioning switched off is still confirmed.
   */
  attach(hooks: Pick<SessionHooks, 'inform'>, provision: boolean): void {
    if (provision) hooks.inform.push((device, inform) => this.onInform(device, inform));
    this.queue.onResult((entry, outcome) => this.onResult(entry, outcome));
  }

  /** The credentials the device accepted, or null. Throws when they cannot be decrypted. */
  async get(device: string): Promise<CrCredentials | null> {
    const doc = await this.col.findOne({ _id: device }, { projection: { active: 1 } });
    if (!doc?.active) return null;
    return JSON.parse(this.secrets.decrypt(doc.active, device)) as CrCredentials;
  }

  /** Stores credentials set by other means (e.g. an operator's SetParameterValues) as active. */
  async set(device: string, creds: CrCredentials): Promise<void> {
    await this.col.updateOne(
      { _id: device },
      { $set: { active: this.seal(device, creds), activatedAt: new Date() } },
      { upsert: true },
    );
  }

  async remove(device: string): Promise<void> {
    await this.col.deleteOne({ _id: device });
  }

  private seal(device: string, creds: CrCredentials): string {
    return this.secrets.encrypt(JSON.stringify(creds), device);
  }

  private async onInform(device: string, inform: Inform): Promise<void> {
    if (!inform.events.some((e) => e.eventCode === '0 BOOTSTRAP')) return;
    const model = dataModelOf(inform.parameterList);
    if (!model) {
      this.log.warn({ device }, 'BOOTSTRAP without a recognisable data model: connection request credentials not provisioned');
      return;
    }
    // CPEs repeat BOOTSTRAP until an Inform is answered: while the last pair is still waiting
    // in the queue, a second one would only be overwritten by it.
    const existing = await this.col.findOne({ _id: device }, { projection: { pending: 1 } });
    if (existing?.pending) {
      const entry = await this.queue.get(existing.pending.queueId);
      if (entry && (entry.status === 'queued' || entry.status === 'sent')) return;
    }
    const creds: CrCredentials = {
      // Hex only: safe in URLs, Digest headers and the Annex G query string without escaping.
      username: 'cr' + randomBytes(8).toString('hex'),
      password: randomBytes(18).toString('base64url'),
    };
    const ms = `${model.root}ManagementServer.`;
    const entry = await this.queue.enqueue(
      device,
      {
        method: 'SetParameterValues',
        parameterList: [
          { name: `${ms}ConnectionRequestUsername`, value: creds.username, type: 'xsd:string' },
          { name: `${ms}ConnectionRequestPassword`, value: creds.password, type: 'xsd:string' },
        ],
        parameterKey: '',
      },
      { kind: PROVISION_ORIGIN, id: device },
    );
    await this.col.updateOne(
      { _id: device },
      { $set: { pending: { value: this.seal(device, creds), queueId: entry._id, at: new Date() } } },
      { upsert: true },
    );
  }

  private async onResult(entry: QueueEntry, outcome: QueueOutcome): Promise<void> {
    if (entry.origin.kind !== PROVISION_ORIGIN) return;
    // The queue entry carried the pair in clear to build the RPC; answered, it needs it no more.
    if (entry.request.method === 'SetParameterValues') {
      await this.queue.redactValues(entry._id, entry.request.parameterList.filter((p) => p.name.endsWith('Password')).map((p) => p.name));
    }
    const doc = await this.col.findOne({ _id: entry.device, 'pending.queueId': entry._id });
    if (!doc?.pending) return;
    if (outcome.kind === 'response') {
      await this.col.updateOne(
        { _id: entry.device, 'pending.queueId': entry._id },
        { $set: { active: doc.pending.value, activatedAt: new Date() }, $unset: { pending: '' } },
      );
      this.log.info({ device: entry.device }, 'connection request credentials provisioned');
    } else {
      await this.col.updateOne({ _id: entry.device, 'pending.queueId': entry._id }, { $unset: { pending: '' } });
      this.log.warn(
        { device: entry.device, fault: outcome.fault.code, message: outcome.fault.message },
        'the device refused the connection request credentials',
      );
    }
  }
}
