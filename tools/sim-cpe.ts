// A simulated router for trying the ACS by hand (docs/api-walkthrough.md): the test suite's CPE
// with a connection request listener. It boots (0 BOOTSTRAP + 1 BOOT), answers whatever the ACS
// asks from its own data model, opens a session when woken, every --interval seconds and a
// second after a Reboot/FactoryReset/Download/Upload (to report it), and prints each session.
// Development only; traffic goes where --acs says.
//
//   npm run build && node dist/tools/sim-cpe.js [--acs http://127.0.0.1:7547/] [--serial DEMO0001]
//                                                [--model tr181|tr098] [--interval 300]
import { TestCpe, type DataModelKind } from '../test/support/cpe';
import { CONNECTION_REQUEST, CrListener } from '../test/support/cr-listener';
import type { EventStruct } from '../cwmp/types';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : def;
}

async function main(): Promise<void> {
  const acsUrl = arg('acs', 'http://127.0.0.1:7547/');
  const serial = arg('serial', 'DEMO0001');
  const model = arg('model', 'tr181') as DataModelKind;
  const interval = Number(arg('interval', '300'));
  if (model !== 'tr181' && model !== 'tr098') throw new Error('--model is tr181 or tr098');
  const root = model === 'tr181' ? 'Device.' : 'InternetGatewayDevice.';

  let cpe!: TestCpe;
  let chain: Promise<unknown> = Promise.resolve();
  const session = (events?: EventStruct[]) => {
    chain = chain.then(async () => {
      const r = await cpe.session(events ? { events } : {});
      const asked = r.acsRequests.map((q) => q.method).join(', ') || 'nothing';
      console.log(`${new Date().toISOString()} session [${r.events.map((e) => e.eventCode).join(', ')}] → ACS asked: ${asked} → ${r.ended}${r.error ? ` (${r.error.message})` : ''}`);
      // Like a router: reboot, reset or transfer right after the session, then report in a new one.
      if (r.acsRequests.some((q) => ['Reboot', 'FactoryReset', 'Download', 'Upload'].includes(q.method))) {
        setTimeout(() => void session(), 1000);
      }
    });
    return chain;
  };
  // The listener checks the credentials the ACS gave the device (at BOOTSTRAP), as a router does.
  const listener = await CrListener.start({
    credentials: () => ({
      username: cpe.get('ManagementServer.ConnectionRequestUsername') ?? '',
      password: cpe.get('ManagementServer.ConnectionRequestPassword') ?? '',
    }),
    onWake: () => session([CONNECTION_REQUEST]),
  });
  cpe = new TestCpe({
    url: acsUrl,
    dataModel: model,
    bootstrap: true,
    deviceId: { manufacturer: 'SimCo', oui: model === 'tr181' ? '0090D0' : '00259E', productClass: 'SimRouter', serialNumber: serial },
    params: {
      [`${root}ManagementServer.ConnectionRequestURL`]: { value: listener.url, type: 'xsd:string' },
      [`${root}ManagementServer.PeriodicInformInterval`]: { value: String(interval), type: 'xsd:unsignedInt', writable: true },
    },
    // Downloads: fetch the file, and a firmware image "installs" its version (from the file name, e.g. fw-2.0.0.bin).
    downloadHandler: async (req, c) => {
      const res = await fetch(req.url);
      if (!res.ok) return { faultCode: 9016, faultString: `HTTP ${res.status} from the file server` };
      const bytes = (await res.arrayBuffer()).byteLength;
      console.log(`${new Date().toISOString()} downloaded ${bytes} bytes from ${req.url.split('?')[0]}`);
      const version = /(\d+\.\d+(\.\d+)?)/.exec(req.method === 'Download' ? req.targetFileName || req.url : '')?.[1];
      if (req.method === 'Download' && req.fileType.startsWith('1 ') && version) {
        const p = c.params.get(`${root}DeviceInfo.SoftwareVersion`);
        if (p) p.value = version;
      }
    },
  });
  console.log(`simulated CPE ${cpe.id} (${model}) → ${acsUrl}; connection requests at ${listener.url}`);
  await session();
  const timer = setInterval(() => void session(), interval * 1000);
  const stop = () => {
    clearInterval(timer);
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((err) => {
  console.error((err as Error).message);
  process.exit(1);
});
