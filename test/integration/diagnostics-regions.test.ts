// Region-bound storage (issue 4): each device's diagnostic data goes only to its region's
// database — by serial prefix, IP prefix, or an operator's assignment — never to the main one.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connectDatabase, type Database } from '../../src/db';
import { services } from '../hooks';
import { ApiClient, enc, startApiAcs } from '../support/api-client';
import type { TestAcs } from '../support/acs';
import { BOOTSTRAP, isDiagnosticRead, periodicProfile, programCpe } from '../support/program';

describe('diagnostics: regional storage (integration)', function () {
  this.timeout(60_000);
  const tag = randomBytes(4).toString('hex');
  const dbs = { eu: `rg_eu_${tag}`, cn: `rg_cn_${tag}`, lab: `rg_lab_${tag}` };
  let acs: TestAcs;
  let api: ApiClient;
  let direct: Database;

  before(async () => {
    const regions = [
      { name: 'eu', db: dbs.eu, default: true, description: 'Germany' },
      { name: 'cn', db: dbs.cn, serialPrefixes: ['CN'] },
      { name: 'lab', db: dbs.lab, ipPrefixes: ['127.0.0.0/8', '::1/128'] },
    ];
    ({ acs, api } = await startApiAcs({ regions: JSON.stringify(regions), diagnosticsProfile: periodicProfile(), diagnosticsRetentionIntervalMs: 0 }));
    direct = await connectDatabase((await services()).mongodbUrl, dbs.eu);
  });
  after(async () => {
    await acs?.stop();
    if (direct) {
      for (const name of Object.values(dbs)) await direct.client.db(name).dropDatabase().catch(() => undefined);
      await direct.close();
    }
  });

  const docsIn = async (db: string) => direct.client.db(db).collection('diagnostics').find({}).toArray();

  it('writes each device\'s snapshots only to its region\'s database', async () => {
    const cn = programCpe(acs.url, { kind: 'tr181', consent: true, serialPrefix: 'CN' });
    const other = programCpe(acs.url, { kind: 'tr098', consent: true, serialPrefix: 'DE' });
    for (const cpe of [cn, other]) {
      await cpe.session({ events: BOOTSTRAP });
      const s = await cpe.session();
      assert.ok(s.acsRequests.some(isDiagnosticRead));
    }
    const ps = (id: string) => acs.program.crypto.pseudonymise('device', id);
    assert.deepEqual((await docsIn(dbs.cn)).map((d) => d.device), [ps(cn.id)], 'serial prefix rule');
    assert.deepEqual((await docsIn(dbs.lab)).map((d) => d.device), [ps(other.id)], 'IP prefix rule (the CPE connects from 127.0.0.1)');
    assert.equal((await docsIn(dbs.eu)).length, 0);
    assert.equal(await acs.database.db.collection('diagnostics').countDocuments(), 0, 'nothing in the main database');

    // An operator assignment wins over the rules, for data collected from then on.
    const put = await api.req('PUT', `/api/v1/devices/${enc(other.id)}/region`, { region: 'eu' });
    assert.equal(put.status, 200, put.text);
    assert.deepEqual(put.body, { region: 'eu', rule: 'assignment' });
    await other.session();
    assert.deepEqual((await docsIn(dbs.eu)).map((d) => d.device), [ps(other.id)]);
    assert.equal((await docsIn(dbs.lab)).length, 1, 'no cross-region copy of older data');
    const st = (await api.get(`/api/v1/devices/${enc(other.id)}/diagnostics/state`)).body;
    assert.deepEqual(st.region, { name: 'eu', rule: 'assignment' });
    assert.deepEqual(st.snapshotsPerRegion, { eu: 1, lab: 1 });
    // Reading through the API gathers every region.
    const snaps = (await api.get(`/api/v1/devices/${enc(other.id)}/diagnostics/snapshots`)).body;
    assert.deepEqual(snaps.items.map((x: { region: string }) => x.region).sort(), ['eu', 'lab']);
    // Region listing never shows database locations.
    const list = await api.get('/api/v1/regions');
    assert.equal(list.body.default, 'eu');
    assert.ok(!list.text.includes('mongodb') && !list.text.includes(dbs.eu));
    assert.equal((await api.req('PUT', `/api/v1/devices/${enc(other.id)}/region`, { region: 'mars' })).status, 400);
  });
});
