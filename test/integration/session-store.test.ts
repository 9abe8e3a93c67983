// The one-session-per-device lock against the real Redis: only its holder can extend or release
// it, and the lock scripts still run after Redis forgot them (a restart, SCRIPT FLUSH).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connectRedis, type Redis } from '../../src/redis';
import { SessionStore } from '../../src/session-store';
import { services } from '../hooks';

describe('session store: the device lock', function () {
  this.timeout(10_000);
  let redis: Redis;
  let store: SessionStore;

  before(async () => {
    const { redisUrl } = await services();
    redis = connectRedis(redisUrl, `test:lock:${randomBytes(4).toString('hex')}:`);
    store = new SessionStore(redis);
  });
  after(() => redis.disconnect());

  it('lets only the holder extend and release the lock', async () => {
    assert.equal(await store.lock('D1', 's1', 5_000), true);
    assert.equal(await store.lock('D1', 's2', 5_000), false, 'held by s1');
    assert.equal(await store.holder('D1'), 's1');

    assert.equal(await store.extend('D1', 's2', 60_000), false, 'not the holder');
    assert.ok((await redis.pttl('lock:D1')) <= 5_000);
    assert.equal(await store.extend('D1', 's1', 60_000), true);
    assert.ok((await redis.pttl('lock:D1')) > 5_000, 'the holder extended it');

    await store.unlock('D1', 's2');
    assert.equal(await store.holder('D1'), 's1', 'another session cannot release it');
    await store.unlock('D1', 's1');
    assert.equal(await store.holder('D1'), null);
    assert.equal(await store.lock('D1', 's2', 5_000), true, 'free again');
    await store.unlock('D1', 's2');
  });

  it('releases on a new connection in the same tick as other commands (one auto-pipeline)', async () => {
    const { redisUrl } = await services();
    const fresh = connectRedis(redisUrl, `test:lock:${randomBytes(4).toString('hex')}:`);
    try {
      const own = new SessionStore(fresh);
      assert.equal(await own.lock('D3', 's1', 5_000), true);
      const [holder] = await Promise.all([fresh.get('lock:D3'), own.unlock('D3', 's1'), fresh.get('other')]);
      assert.equal(holder, 's1');
      assert.equal(await own.holder('D3'), null);
    } finally {
      fresh.disconnect();
    }
  });

  it('still releases and extends after Redis forgot the scripts', async () => {
    assert.equal(await store.lock('D2', 's1', 5_000), true);
    await redis.script('FLUSH');
    assert.equal(await store.extend('D2', 's1', 60_000), true);
    await redis.script('FLUSH');
    await store.unlock('D2', 's1');
    assert.equal(await store.holder('D2'), null);
  });
});
