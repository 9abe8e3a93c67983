// Pure pieces behind connection requests and files: the secret key's encryption and signatures,
// the Annex G UDP message, Retry-After parsing. No database, no network.
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildUdpConnectionRequest, parseUdpAddress, parseUdpConnectionRequest } from '../../cwmp/udp-connection-request';
import { loadConfig } from '../../src/config';
import { retryAfterSeconds } from '../../src/connection-request';
import { createLogger } from '../../src/logger';
import { loadSecrets, parseKey, Secrets } from '../../src/secrets';

describe('secrets', () => {
  const s = new Secrets(randomBytes(32));

  it('encrypts with AES-256-GCM, bound to its context; tampering or another key fails', () => {
    const blob = s.encrypt('p4ssw0rd', 'dev-1');
    assert.ok(!blob.includes('p4ssw0rd'));
    assert.notEqual(s.encrypt('p4ssw0rd', 'dev-1'), blob, 'a fresh IV each time');
    assert.equal(s.decrypt(blob, 'dev-1'), 'p4ssw0rd');
    assert.throws(() => s.decrypt(blob, 'dev-2'), 'copied to another device');
    const parts = blob.split(':');
    const body = Buffer.from(parts[3], 'base64');
    body[0] ^= 1;
    parts[3] = body.toString('base64');
    assert.throws(() => s.decrypt(parts.join(':'), 'dev-1'), 'tampered');
    assert.throws(() => new Secrets(randomBytes(32)).decrypt(blob, 'dev-1'), 'another key');
  });

  it('signs per purpose and verifies in constant time', () => {
    const sig = s.sign('file-url', 'a\n1\nb', 16);
    assert.equal(sig.length, 22);
    assert.ok(s.verify('file-url', 'a\n1\nb', sig, 16));
    assert.ok(!s.verify('file-url', 'a\n2\nb', sig, 16));
    assert.ok(!s.verify('encryption', 'a\n1\nb', sig, 16), 'sub-keys differ by purpose');
  });

  it('reads keys as hex or base64, refuses other lengths', () => {
    const k = randomBytes(32);
    assert.ok(parseKey(k.toString('hex')).equals(k));
    assert.ok(parseKey(k.toString('base64')).equals(k));
    assert.throws(() => parseKey('abcd'));
  });

  it('requires ACS_SECRET_KEY in production, and generates one development key file once', () => {
    const log = createLogger('silent');
    assert.throws(() => loadSecrets(loadConfig({ NODE_ENV: 'production' }), log), /ACS_SECRET_KEY/);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'acs-key-'));
    try {
      const config = loadConfig({ ACS_DATA_DIR: dir });
      const a = loadSecrets(config, log);
      const b = loadSecrets(config, log);
      assert.equal(b.decrypt(a.encrypt('x', 'c'), 'c'), 'x', 'the same key the second time');
      assert.match(readFileSync(path.join(dir, 'secret.key'), 'utf8'), /^[0-9a-f]{64}\n$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('UDP connection request (TR-069 Annex G)', () => {
  it('builds the GET line, Host header and blank line, signed with HMAC-SHA1 over ts‖id‖un‖cn', () => {
    const msg = buildUdpConnectionRequest({ host: '192.0.2.7', port: 30005, username: 'cpe', password: 'pw', ts: 1120673700, id: '1234', cnonce: 'XTGRWIPC6D3IPXS3' });
    const sig = createHmac('sha1', 'pw').update('11206737001234cpeXTGRWIPC6D3IPXS3').digest('hex');
    assert.equal(msg, `GET http://192.0.2.7:30005?ts=1120673700&id=1234&un=cpe&cn=XTGRWIPC6D3IPXS3&sig=${sig} HTTP/1.1\r\nHost: 192.0.2.7:30005\r\n\r\n`);
    assert.deepEqual(parseUdpConnectionRequest(msg), { host: '192.0.2.7:30005', ts: 1120673700, id: '1234', un: 'cpe', cn: 'XTGRWIPC6D3IPXS3', sig });
    assert.equal(parseUdpConnectionRequest('POST / HTTP/1.1\r\n\r\n'), null);
    assert.equal(parseUdpConnectionRequest('GET http://h:1?ts=1&id=2 HTTP/1.1\r\nHost: h:1\r\n\r\n'), null, 'fields missing');
  });

  it('parses UDPConnectionRequestAddress values', () => {
    assert.deepEqual(parseUdpAddress('198.51.100.4:5060'), { host: '198.51.100.4', port: 5060 });
    assert.deepEqual(parseUdpAddress('[2001:db8::1]:7547'), { host: '2001:db8::1', port: 7547 });
    assert.deepEqual(parseUdpAddress('cpe.example.net'), { host: 'cpe.example.net', port: 80 });
    assert.equal(parseUdpAddress('host:99999'), null);
    assert.equal(parseUdpAddress(''), null);
  });
});

describe('Retry-After', () => {
  it('takes seconds or an HTTP date, clamps, and defaults when absent or unusable', () => {
    assert.equal(retryAfterSeconds('120'), 120);
    assert.equal(retryAfterSeconds(new Date(Date.UTC(2030, 0, 1, 0, 1)).toUTCString(), Date.UTC(2030, 0, 1)), 60);
    assert.equal(retryAfterSeconds('99999999'), 3600);
    assert.equal(retryAfterSeconds(undefined), 60);
    assert.equal(retryAfterSeconds('soon'), 60);
  });
});
