// The device registry's two documents against the real database and Redis: a periodic Inform that
// repeats what the device reported writes only its presence; anything else that changes the
// stored values makes the next Inform write again; registries from before the split are moved.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connectDatabase, type Database } from '../../src/db';
import { Devices } from '../../src/devices';
import { createLogger } from '../../src/logger';
import { connectRedis, type Redis } from '../../src/redis';
import { RegistryDigests } from '../../src/registry-digests';
import { services } from '../hooks';
import { parsedInform } from '../support/informs';

const ID = '00AAAA-PC-R1';
const inform = (sw: string, event?: string) =>
  parsedInform(
    'R1',
    [
      ['Device.DeviceInfo.SoftwareVersion', sw, 'xsd:string'],
      ['Device.ManagementServer.PeriodicInformInterval', '600', 'xsd:unsignedInt'],
    ],
    event,
  );

describe('device registry: registry and presence documents', function () {
  this.timeout(30_000);
  const log = createLogger('silent');
  let database: Database;
  let redis: Redis;
  let devices: Devices;
  const at = (min: number) => new Date(Date.UTC(2026, 10, 2, 8, min));
  const sw = async () => (await devices.get(ID))?.params['Device:DeviceInfo:SoftwareVersion'];

  before(async () => {
    const { mongodbUrl, redisUrl } = await services();
    const tag = randomBytes(4).toString('hex');
    database = await connectDatabase(mongodbUrl, `test_reg_${tag}`, 4);
    redis = connectRedis(redisUrl, `test:reg:${tag}:`);
    devices = new Devices(database.db, 300, log, 10_000, new RegistryDigests(redis));
    await devices.ensureIndexes();
  });
  after(async () => {
    await database.db.dropDatabase().catch(() => undefined);
    await database.close();
    redis.disconnect();
  });

  it('writes only the presence of an Inform that repeats the stored values, and the registry when one changed', async () => {
    await devices.recordInform(ID, inform('1.0'), { now: at(0), remote: '10.0.0.1' });
    assert.equal(devices.backlog, 2, 'a new device: registry and presence');
    await devices.flush();

    await devices.recordInform(ID, inform('1.0'), { now: at(10), remote: '10.0.0.2' });
    assert.equal(devices.backlog, 1, 'nothing reported changed: presence only');
    const d = await devices.get(ID);
    assert.deepEqual(d?.lastInformAt, at(10));
    assert.equal(d?.lastRemote, '10.0.0.2');
    assert.deepEqual(d?.onlineUntil, new Date(at(10).getTime() + 900_000), '1.5 × the reported interval');
    assert.deepEqual(d?.registeredAt, at(0));
    assert.deepEqual(d?.params['Device:DeviceInfo:SoftwareVersion'], { v: '1.0', t: 'xsd:string', ts: at(0) }, 'learned at the first Inform');

    await devices.recordInform(ID, inform('2.0'), { now: at(20) });
    assert.equal(devices.backlog, 2, 'a changed value: the registry too');
    assert.deepEqual(await sw(), { v: '2.0', t: 'xsd:string', ts: at(20) });
  });

  it('writes the next Inform after a read from the device changed a stored value', async () => {
    await devices.setParams(ID, [{ name: 'Device.DeviceInfo.SoftwareVersion', value: '2.1-read', type: 'xsd:string' }], at(30));
    assert.equal((await sw())?.v, '2.1-read');
    await devices.recordInform(ID, inform('2.0'), { now: at(40) });
    assert.deepEqual(await sw(), { v: '2.0', t: 'xsd:string', ts: at(40) }, 'the Inform is what the device reports now');
  });

  it('registers a deleted device again at its next Inform', async () => {
    await devices.flush();
    assert.equal(await devices.delete(ID), true);
    assert.equal(await devices.get(ID), null);
    assert.equal(await devices.presence.countDocuments({ _id: ID }), 0, 'its presence went with it');
    await devices.recordInform(ID, inform('2.0'), { now: at(50) });
    const d = await devices.get(ID);
    assert.deepEqual(d?.registeredAt, at(50));
    assert.deepEqual(d?.lastInformAt, at(50));
    assert.equal(d?.params['Device:DeviceInfo:SoftwareVersion'].v, '2.0');
  });

  it('a boot writes the registry at once, with its boot time', async () => {
    await devices.recordInform(ID, inform('2.0', '1 BOOT'), { now: at(55) });
    assert.deepEqual((await devices.col.findOne({ _id: ID }))?.lastBootAt, at(55));
  });

  it('moves presence kept in device documents of an older version into presence documents at start-up', async () => {
    const legacy = { _id: 'OLD-PC-1', deviceId: { manufacturer: 'M', oui: 'OLD', productClass: 'PC', serialNumber: '1' }, params: {}, registeredAt: at(0), tags: [] };
    await database.db.collection<{ _id: string; [k: string]: unknown }>('devices').insertOne({ ...legacy, lastInformAt: at(5), lastEvents: ['2 PERIODIC'], lastRemote: '10.9.9.9', onlineUntil: at(20), offline: true, offlineSince: at(20) });
    await devices.ensureIndexes();
    const raw = await database.db.collection<{ _id: string; [k: string]: unknown }>('devices').findOne({ _id: 'OLD-PC-1' });
    assert.deepEqual(raw, legacy, 'the device document keeps only the registry');
    const d = await devices.get('OLD-PC-1');
    assert.deepEqual([d?.lastInformAt, d?.lastEvents, d?.lastRemote, d?.onlineUntil, d?.offline, d?.offlineSince], [at(5), ['2 PERIODIC'], '10.9.9.9', at(20), true, at(20)]);
    assert.equal(await devices.count({ online: false, oui: 'OLD' }), 1);
    assert.equal(await devices.offlineCount(), 1);
  });

  it('offline detection drops the presence a delete left behind while another process stored an Inform, and marks the rest', async () => {
    const RACED = '00AAAA-PC-R2';
    const r2 = () => parsedInform('R2', [['Device.ManagementServer.PeriodicInformInterval', '600', 'xsd:unsignedInt']]);
    await devices.recordInform(RACED, r2(), { now: at(0) });
    await devices.flush();
    // Another ACS process (its own write-behind buffer, the same digests): the Inform repeats
    // what is stored, so only its presence is buffered there, and it lands after the delete.
    const other = new Devices(database.db, 300, log, 10_000, new RegistryDigests(redis));
    await other.recordInform(RACED, r2(), { now: at(1) });
    assert.equal(other.backlog, 1, 'presence only');
    assert.equal(await devices.delete(RACED), true);
    await other.flush();
    assert.deepEqual([await devices.col.countDocuments({ _id: RACED }), await devices.presence.countDocuments({ _id: RACED })], [0, 1], 'an orphan presence');

    const { marked, dropped } = await devices.markMissedInforms(at(24 * 60), 100);
    assert.equal(dropped, 1);
    assert.equal(await devices.presence.countDocuments({ _id: RACED }), 0, 'the orphan is gone');
    assert.ok(!marked.includes(RACED));
    assert.deepEqual(marked, [ID], 'the registered device that missed its inform is marked (OLD-PC-1 already was)');
    assert.equal((await devices.get(ID))?.offline, true);
  });
});
