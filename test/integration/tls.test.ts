// CWMP over HTTPS, where Basic authentication is acceptable, against the real server.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TestCpe } from '../support/cpe';
import { startTestAcs, type TestAcs } from '../support/acs';
import { freePort } from '../../tools/local-services';

describe('CWMP over TLS (integration)', function () {
  this.timeout(30_000);
  let dir: string;
  let acs: TestAcs;
  let httpsUrl: string;
  let cert: Buffer;

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'acs-tls-'));
    const [certFile, keyFile] = [path.join(dir, 'cert.pem'), path.join(dir, 'key.pem')];
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1', '-days', '1', '-keyout', keyFile, '-out', certFile], { stdio: 'ignore' });
    cert = readFileSync(certFile);
    acs = await startTestAcs({ tlsCert: certFile, tlsKey: keyFile, cwmpsPort: await freePort(), cpeAuth: 'basic', cpeUsername: 'cpe', cpePassword: 'pw' });
    httpsUrl = `https://127.0.0.1:${acs.cwmpsPort}/`;
  });
  after(async () => {
    await acs?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  function cpe(url: string, password: string, serial: string): TestCpe {
    return new TestCpe({ url, tls: { ca: cert }, username: 'cpe', password, deviceId: { manufacturer: 'A', oui: '00AABB', productClass: 'T', serialNumber: serial }, dataModel: 'tr181' });
  }

  it('accepts Basic credentials over TLS and records the session', async () => {
    const r = await cpe(httpsUrl, 'pw', 'TLS1').session();
    assert.equal(r.ended, '204');
    await acs.flush();
    const [s] = await acs.sessions.forDevice('00AABB-T-TLS1');
    assert.equal(s.outcome, 'completed');
  });

  it('refuses wrong Basic credentials over TLS', async () => {
    const r = await cpe(httpsUrl, 'nope', 'TLS2').session();
    assert.equal(r.httpStatus, 401);
  });

  it('never accepts Basic over plain HTTP: the plain port challenges with Digest', async () => {
    const r = await cpe(acs.url, 'pw', 'TLS3').session();
    assert.equal(r.ended, '204', 'the CPE answers the Digest challenge');
    const res = await fetch(acs.url, { method: 'POST', headers: { Authorization: 'Basic ' + Buffer.from('cpe:pw').toString('base64') }, body: '' });
    assert.equal(res.status, 401);
    assert.match(res.headers.get('www-authenticate') ?? '', /^Digest /);
  });
});
