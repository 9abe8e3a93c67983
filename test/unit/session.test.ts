import assert from 'node:assert/strict';
import { negotiateVersion, newSession, offerRequest, receive, abandon } from '../../cwmp/session';
import type { Envelope, Inform } from '../../cwmp/types';
import { makeFault } from '../../cwmp/faults';

const inform: Inform = {
  method: 'Inform',
  deviceId: { manufacturer: 'Acme', oui: '00AABB', productClass: 'R1', serialNumber: 'S1' },
  events: [{ eventCode: '2 PERIODIC', commandKey: '' }],
  maxEnvelopes: 1,
  currentTime: '2026-11-29T10:00:00Z',
  retryCount: 0,
  parameterList: [],
};

function informed(extra: Partial<Envelope> = {}) {
  return receive(newSession('s'), { ns: '1-2', id: '7', body: inform, ...extra });
}

describe('session state machine', () => {
  it('answers Inform with InformResponse (MaxEnvelopes 1) in the CPE namespace, echoing the ID', () => {
    const step = informed();
    assert.equal(step.status, 200);
    assert.deepEqual(step.reply, { ns: '1-2', id: '7', body: { method: 'InformResponse', maxEnvelopes: 1 } });
    assert.equal(step.state.phase, 'cpe');
    assert.equal(step.effects[0].type, 'inform');
  });

  it('negotiates UseCWMPVersion from SupportedCWMPVersions, and faults 8006 when none is common', () => {
    assert.equal(negotiateVersion('1.0, 1.1,1.2,1.3,1.4'), '1.4');
    assert.equal(negotiateVersion('1.0,1.2'), '1.2');
    assert.equal(negotiateVersion('2.0'), null);
    const ok = informed({ supportedCWMPVersions: '1.0,1.3' });
    assert.equal(ok.reply!.useCWMPVersion, '1.3');
    const bad = informed({ supportedCWMPVersions: '2.0, 3.1' });
    assert.equal(bad.reply!.body!.method, 'Fault');
    assert.equal((bad.reply!.body as { code: number }).code, 8006);
    assert.equal(bad.state.phase, 'inform');
  });

  it('refuses anything but Inform as the first message', () => {
    const step = receive(newSession('s'), { ns: '1-0', id: '1', body: { method: 'GetRPCMethods' } });
    assert.equal((step.reply!.body as { code: number }).code, 8003);
  });

  it('answers CPE requests, then asks for the next ACS request on the empty POST', () => {
    let step = informed();
    step = receive(step.state, {
      ns: '1-2',
      id: '8',
      body: { method: 'TransferComplete', commandKey: 'k', fault: { faultCode: 0, faultString: '' }, startTime: '', completeTime: '' },
    });
    assert.deepEqual(step.reply, { ns: '1-2', id: '8', body: { method: 'TransferCompleteResponse' } });
    assert.equal(step.effects[0].type, 'cpe-request');
    step = receive(step.state, { ns: '1-2', id: '9', body: { method: 'GetRPCMethods' } });
    assert.equal(step.reply!.body!.method, 'GetRPCMethodsResponse');
    step = receive(step.state, null);
    assert.equal(step.wantsRequest, true);
    const sent = offerRequest(step.state, { request: { method: 'GetParameterValues', parameterNames: ['Device.'] }, ref: 'q1' });
    assert.equal(sent.reply!.id, 's.1');
    assert.equal(sent.reply!.body!.method, 'GetParameterValues');
    const answered = receive(sent.state, {
      ns: '1-2',
      id: 's.1',
      body: { method: 'GetParameterValuesResponse', parameterList: [{ name: 'Device.X', value: '1', type: 'xsd:int' }] },
    });
    assert.equal(answered.effects[0].type, 'rpc-response');
    assert.equal(answered.wantsRequest, true);
    const end = offerRequest(answered.state, null);
    assert.equal(end.status, 204);
    assert.equal(end.reply, null);
    assert.equal(end.state.phase, 'ended');
  });

  it('matches faults to the outstanding request and rejects mismatched IDs and methods', () => {
    const s = offerRequest(receive(informed().state, null).state, {
      request: { method: 'SetParameterValues', parameterList: [], parameterKey: '' },
      ref: 'q',
    }).state;
    const fault = receive(s, { ns: '1-2', id: 's.1', body: makeFault(9003, 'Invalid arguments', [{ parameterName: 'A', faultCode: 9008, faultString: 'ro' }]) });
    assert.equal(fault.effects[0].type, 'rpc-fault');
    const wrongId = receive(s, { ns: '1-2', id: 'other', body: { method: 'SetParameterValuesResponse', status: 0 } });
    assert.equal((wrongId.reply!.body as { code: number }).code, 8003);
    assert.match((wrongId.reply!.body as { message: string }).message, /does not match/);
    const wrongMethod = receive(s, { ns: '1-2', id: 's.1', body: { method: 'RebootResponse' } });
    assert.match((wrongMethod.reply!.body as { message: string }).message, /expected the response to SetParameterValues/);
  });

  it('refuses a response to a request never sent', () => {
    const step = receive(informed().state, { ns: '1-2', id: 'x', body: { method: 'GetParameterValuesResponse', parameterList: [] } });
    assert.match((step.reply!.body as { message: string }).message, /answers no request/);
  });

  it('with HoldRequests the CPE may not send requests, and ACS requests keep holding', () => {
    const step = receive(newSession('s'), { ns: '1-2', id: '7', body: inform }, { holdRequests: true });
    assert.equal(step.reply!.holdRequests, true);
    const refused = receive(step.state, { ns: '1-2', id: '8', body: { method: 'GetRPCMethods' } });
    assert.match((refused.reply!.body as { message: string }).message, /HoldRequests/);
    const next = offerRequest(receive(step.state, null).state, { request: { method: 'Reboot', commandKey: 'r' }, ref: 'q' });
    assert.equal(next.reply!.holdRequests, true);
  });

  it('reports an outstanding request as unanswered when the session is abandoned or an empty POST comes', () => {
    const s = offerRequest(receive(informed().state, null).state, { request: { method: 'Reboot', commandKey: 'r' }, ref: 'q' }).state;
    assert.deepEqual(abandon(s).map((e) => e.type), ['rpc-unanswered']);
    const empty = receive(s, null);
    assert.equal(empty.effects[0].type, 'rpc-unanswered');
    assert.equal(empty.wantsRequest, true);
  });
});
