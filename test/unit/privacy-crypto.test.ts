// Pseudonyms and AES-256-GCM with key ids (issue 4): stable, keyed, rotatable, never leaking keys.
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { randomBytes } from 'node:crypto';
import { PrivacyCrypto, derivedRing, normaliseIdentifier, parseKeyRing, privacyCryptoFrom } from '../../src/privacy/crypto';

const hex = () => randomBytes(32).toString('hex');

describe('privacy crypto (unit)', () => {
  const k1 = hex();
  const k2 = hex();
  const p1 = hex();

  it('pseudonymises with a keyed hash: stable, normalised, per kind, per key', () => {
    const c = new PrivacyCrypto(parseKeyRing(`k1:${k1}`, 'x'), parseKeyRing(`p1:${p1}`, 'y'));
    const a = c.pseudonymise('mac', 'AA:BB:CC:DD:EE:01');
    assert.equal(a, c.pseudonymise('mac', 'aa-bb-cc-dd-ee-01'));
    assert.match(a, /^ps1:p1:[A-Za-z0-9_-]{32}$/);
    assert.ok(!a.toLowerCase().includes('aabbccddee01'));
    assert.notEqual(c.pseudonymise('serial', 'X1'), c.pseudonymise('imei', 'X1'), 'the kind is part of the hash');
    const other = new PrivacyCrypto(parseKeyRing(`k1:${k1}`, 'x'), parseKeyRing(`p1:${hex()}`, 'y'));
    assert.notEqual(other.pseudonymise('mac', 'AA:BB:CC:DD:EE:01'), a, 'another key, another pseudonym');
    assert.equal(normaliseIdentifier('ip', ' 010.001.002.003 '), '10.1.2.3');
  });

  it('encrypts with AES-256-GCM bound to its context, and decrypts after a rotation', () => {
    const old = new PrivacyCrypto(parseKeyRing(`k1:${k1}`, 'x'), parseKeyRing(`p1:${p1}`, 'y'));
    const blob = old.encrypt('Sim-SSID', 'dev|Device.WiFi.SSID.1.SSID');
    assert.match(blob, /^enc1:k1:/);
    assert.ok(!blob.includes('Sim-SSID'));
    assert.notEqual(blob, old.encrypt('Sim-SSID', 'dev|Device.WiFi.SSID.1.SSID'), 'fresh IV each time');
    assert.equal(old.decrypt(blob, 'dev|Device.WiFi.SSID.1.SSID'), 'Sim-SSID');
    assert.throws(() => old.decrypt(blob, 'other|Device.WiFi.SSID.1.SSID'), 'another context fails');
    const tampered = blob.slice(0, -2) + (blob.endsWith('A') ? 'BB' : 'AA');
    assert.throws(() => old.decrypt(tampered, 'dev|Device.WiFi.SSID.1.SSID'));
    // Rotation: k2 is current, k1 still decrypts.
    const rotated = new PrivacyCrypto(parseKeyRing(`k2:${k2},k1:${k1}`, 'x'), parseKeyRing(`p1:${p1}`, 'y'));
    assert.equal(rotated.decrypt(blob, 'dev|Device.WiFi.SSID.1.SSID'), 'Sim-SSID');
    assert.ok(rotated.needsRotation(blob));
    const again = rotated.reencrypt(blob, 'dev|Device.WiFi.SSID.1.SSID');
    assert.match(again, /^enc1:k2:/);
    assert.ok(!rotated.needsRotation(again));
    const k2only = new PrivacyCrypto(parseKeyRing(`k2:${k2}`, 'x'), parseKeyRing(`p1:${p1}`, 'y'));
    assert.throws(() => k2only.decrypt(blob, 'dev|Device.WiFi.SSID.1.SSID'), /key "k1"/);
  });

  it('finds old pseudonyms after a pseudonym key rotation', () => {
    const p2 = hex();
    const before = new PrivacyCrypto(parseKeyRing(`k1:${k1}`, 'x'), parseKeyRing(`p1:${p1}`, 'y'));
    const after = new PrivacyCrypto(parseKeyRing(`k1:${k1}`, 'x'), parseKeyRing(`p2:${p2},p1:${p1}`, 'y'));
    assert.ok(after.pseudonymsOf('device', 'D1').includes(before.pseudonymise('device', 'D1')));
    assert.equal(after.pseudonymsOf('device', 'D1')[0], after.pseudonymise('device', 'D1'));
  });

  it('never shows keys: inspection, JSON, error messages', () => {
    const c = privacyCryptoFrom({ privacyKeys: `k1:${k1}`, pseudonymKeys: `p1:${p1}` }, () => randomBytes(32));
    const shown = inspect(c, { depth: 10, showHidden: true }) + JSON.stringify({ c }) + JSON.stringify(c.keyIds);
    assert.ok(!shown.includes(k1) && !shown.includes(p1), shown);
    assert.ok(!shown.includes(Buffer.from(k1, 'hex').toString('base64')));
    for (const bad of [`k1:${k1.slice(2)}`, `${k1}`, `k1:${k1},k1:${k2}`, 'bad id!:' + k1]) {
      try {
        parseKeyRing(bad, 'ACS_PRIVACY_KEYS');
        assert.fail('accepted ' + bad);
      } catch (err) {
        assert.ok(!(err as Error).message.includes(k1.slice(4, 20)), (err as Error).message);
      }
    }
  });

  it('derives distinct keys per purpose from the master key', () => {
    const m = randomBytes(32);
    const a = derivedRing(m, 'encryption');
    const b = derivedRing(m, 'pseudonym');
    assert.notDeepEqual(a.keys.get('m1'), b.keys.get('m1'));
    assert.notDeepEqual(a.keys.get('m1'), m);
    const c1 = privacyCryptoFrom({}, () => m);
    const c2 = privacyCryptoFrom({}, () => m);
    assert.equal(c1.pseudonymise('serial', 'S'), c2.pseudonymise('serial', 'S'));
    assert.equal(c2.decrypt(c1.encrypt('v', 'ctx'), 'ctx'), 'v');
  });
});
