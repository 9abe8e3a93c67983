import { strict as assert } from 'assert';

import { buildEnvelope, parseEnvelope } from '../../cwmp/codec';
import { FAULT_MESSAGES, faultMessage, faultType, isVendorFault, makeFault } from '../../cwmp/faults';
import type { SoapFault } from '../../cwmp/types';

const ACS_CODES = [8000, 8001, 8002, 8003, 8004, 8005, 8006];
const CPE_CODES = Array.from({ length: 33 }, (_, i) => 9000 + i); // 9000 … 9032
const ALL_CODES = [...ACS_CODES, ...CPE_CODES];

describe('cwmp faults: table', () => {
  it('has a message for every CWMP code 8000-8006 and 9000-9032, and nothing else', () => {
    for (const code of ALL_CODES) {
      assert.equal(typeof FAULT_MESSAGES[code], 'string', String(code));
      assert.ok(FAULT_MESSAGES[code].length > 0);
      assert.equal(faultMessage(code), FAULT_MESSAGES[code]);
    }
    assert.deepEqual(Object.keys(FAULT_MESSAGES).map(Number).sort(), [...ALL_CODES].sort());
    assert.ok(Object.isFrozen(FAULT_MESSAGES));
  });

  it('uses the standard texts', () => {
    assert.equal(faultMessage(8000), 'Method not supported');
    assert.equal(faultMessage(8005), 'Retry request');
    assert.equal(faultMessage(8006), 'ACS version incompatible with CPE');
    assert.equal(faultMessage(9003), 'Invalid arguments');
    assert.equal(faultMessage(9005), 'Invalid parameter name');
    assert.equal(faultMessage(9008), 'Attempt to set a non-writable parameter');
    assert.equal(faultMessage(9032), 'Invalid Deployment Unit update: version already exists');
  });

  it('falls back to "Vendor fault" for 9800-9899 (and 8800-8899) and "Unknown fault" otherwise', () => {
    for (const code of [9800, 9850, 9899, 8800, 8899]) {
      assert.equal(faultMessage(code), 'Vendor fault', String(code));
      assert.ok(isVendorFault(code));
    }
    for (const code of [0, 7999, 8007, 8799, 8900, 9033, 9799, 9900, 10000, -1, NaN]) {
      assert.equal(faultMessage(code), 'Unknown fault', String(code));
    }
  });

  it('classifies Client and Server per TR-069', () => {
    for (const code of [8003, 9003, 9005, 9006, 9007, 9008]) assert.equal(faultType(code), 'Client', String(code));
    for (const code of [8000, 8001, 8002, 8004, 8005, 8006, 9000, 9001, 9002, 9004, 9009, 9010, 9011, 9019, 9020, 9026, 9032, 9800, 1234]) {
      assert.equal(faultType(code), 'Server', String(code));
    }
  });

  it('makeFault fills in defaults', () => {
    assert.deepEqual(makeFault(8005), {
      method: 'Fault',
      faultCode: 'Server',
      faultString: 'CWMP fault',
      code: 8005,
      message: 'Retry request',
      setParameterValuesFaults: [],
    });
    const spv = [{ parameterName: 'Device.X', faultCode: 9007, faultString: 'bad' }];
    assert.deepEqual(makeFault(9003, 'custom', spv), {
      method: 'Fault',
      faultCode: 'Client',
      faultString: 'CWMP fault',
      code: 9003,
      message: 'custom',
      setParameterValuesFaults: spv,
    });
    assert.equal(makeFault(9877).message, 'Vendor fault');
  });
});

describe('cwmp faults: every code both ways', () => {
  for (const code of [...ALL_CODES, 9800, 9899]) {
    it(`fault ${code}: build → parse, and parse a CPE-written envelope`, () => {
      // build → parse
      const fault = makeFault(code);
      const env = { ns: '1-2' as const, id: `f${code}`, body: fault };
      const xml = buildEnvelope(env);
      assert.ok(xml.includes(`<FaultCode>${code}</FaultCode>`));
      assert.ok(xml.includes(`<faultcode>${faultType(code)}</faultcode>`));
      assert.deepStrictEqual(parseEnvelope(xml), env);

      // parse what a CPE might write (SOAP-ENV prefix, qualified detail, prefixed faultcode, padding)
      const cpe =
        '<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:cwmp="urn:dslforum-org:cwmp-1-0">' +
        `<SOAP-ENV:Header><cwmp:ID SOAP-ENV:mustUnderstand="1">c${code}</cwmp:ID></SOAP-ENV:Header><SOAP-ENV:Body>` +
        `<SOAP-ENV:Fault><faultcode>SOAP-ENV:${faultType(code)}</faultcode><faultstring>CWMP fault</faultstring>` +
        `<detail><cwmp:Fault><FaultCode> ${code} </FaultCode><FaultString>${faultMessage(code)}</FaultString></cwmp:Fault></detail>` +
        '</SOAP-ENV:Fault></SOAP-ENV:Body></SOAP-ENV:Envelope>';
      const parsed = parseEnvelope(cpe);
      assert.equal(parsed.ns, '1-0');
      assert.equal(parsed.id, `c${code}`);
      const f = parsed.body as SoapFault;
      assert.equal(f.method, 'Fault');
      assert.equal(f.code, code);
      assert.equal(f.message, faultMessage(code));
      assert.equal(f.faultCode, faultType(code));
      assert.equal(f.faultString, 'CWMP fault');
      assert.deepEqual(f.setParameterValuesFaults, []);
    });
  }
});
