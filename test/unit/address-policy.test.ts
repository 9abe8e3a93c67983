// The connection-request address policy: which addresses a device-reported URL may point at,
// for IP literals and for names resolved through the policy's lookup.
import assert from 'node:assert/strict';
import type { LookupAddress } from 'node:dns';
import { AddressPolicy, REFUSED_CODE } from '../../src/address-policy';
import { parseCidr } from '../../src/net-address';
import { loadConfig } from '../../src/config';

function resolve(policy: AddressPolicy, host: string, all: boolean): Promise<{ code?: string; message?: string; addresses: string[] }> {
  return new Promise((done) => {
    policy.lookup(host, { all }, ((err: NodeJS.ErrnoException | null, a: string | LookupAddress[]) => {
      if (err) return done({ code: err.code, message: err.message, addresses: [] });
      done({ addresses: Array.isArray(a) ? a.map((x) => x.address) : [a] });
    }) as never);
  });
}

describe('connection-request address policy (unit)', () => {
  const strict = new AddressPolicy({ allowLoopback: false, deny: ['10.20.0.0/16', 'fd00:1::/32'] });
  const dev = new AddressPolicy({ allowLoopback: true, deny: [] });

  it('refuses unspecified, link-local (metadata), multicast, broadcast and, unless allowed, loopback', () => {
    const refused: [string, RegExp][] = [
      ['0.0.0.0', /unspecified/],
      ['::', /unspecified/],
      ['169.254.169.254', /link-local/],
      ['[fe80::1]', /link-local/],
      ['224.0.0.1', /multicast/],
      ['ff02::1', /multicast/],
      ['255.255.255.255', /broadcast/],
      ['127.0.0.1', /loopback/],
      ['127.8.9.10', /loopback/],
      ['[::1]', /loopback/],
      ['::ffff:127.0.0.1', /loopback/],
      ['::FFFF:169.254.169.254', /link-local/],
      ['10.20.3.4', /ACS_CR_DENY_NETS/],
      ['fd00:1:2::5', /ACS_CR_DENY_NETS/],
    ];
    for (const [ip, why] of refused) assert.match(strict.refusal(ip) ?? 'allowed', why, ip);
    for (const ip of ['10.1.2.3', '192.168.1.1', '172.16.0.9', '100.64.12.1', '203.0.113.7', '2001:db8::1', 'fd00:2::1']) {
      assert.equal(strict.refusal(ip), null, ip);
    }
    assert.equal(dev.refusal('127.0.0.1'), null);
    assert.equal(dev.refusal('::1'), null);
    assert.match(dev.refusal('169.254.169.254') ?? '', /link-local/, 'metadata stays refused where loopback is allowed');
    assert.equal(strict.refusal('cpe.example.net'), null, 'names are checked when resolved');
  });

  it('refuses a name that resolves only to refused addresses, in both lookup forms', async () => {
    for (const all of [false, true]) {
      const r = await resolve(strict, 'localhost', all);
      assert.equal(r.code, REFUSED_CODE);
      assert.match(r.message ?? '', /localhost resolves only to refused addresses: .*loopback/);
    }
    const ok = await resolve(dev, 'localhost', false);
    assert.equal(ok.code, undefined);
    assert.ok(['127.0.0.1', '::1'].includes(ok.addresses[0]), ok.addresses.join());
  });

  it('allows loopback by default only outside production, and refuses a bad deny list at start-up', () => {
    assert.equal(loadConfig({}).crAllowLoopback, true);
    assert.equal(loadConfig({ NODE_ENV: 'production' }).crAllowLoopback, false);
    assert.equal(loadConfig({ NODE_ENV: 'production', ACS_CR_ALLOW_LOOPBACK: 'true' }).crAllowLoopback, true);
    assert.deepEqual(loadConfig({ ACS_CR_DENY_NETS: '10.0.0.0/8, fd00::/8' }).crDenyNets, ['10.0.0.0/8', 'fd00::/8']);
    for (const bad of ['10.0.0.0', '10.0.0.0/33', 'ten/8', '10.0.0.0/8/1', 'fe80::/129']) {
      assert.throws(() => loadConfig({ ACS_CR_DENY_NETS: bad }), /ACS_CR_DENY_NETS: .* is not a network in CIDR notation/, bad);
    }
    assert.deepEqual(parseCidr(' 192.168.0.0/24 '), { address: '192.168.0.0', prefix: 24, family: 'ipv4' });
    assert.equal(parseCidr('192.168.0.0/24/1'), null);
  });
});
