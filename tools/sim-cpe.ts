// A simulated router for trying the ACS by hand (docs/api-walkthrough.md): one SimRouter
// (tools/sim/router.ts, the same router the fleet simulator runs by the thousand) with its own
// connection request listener. It boots (0 BOOTSTRAP + 1 BOOT), answers whatever the ACS asks
// from its own data model, opens a session when woken, every --interval seconds (or whatever
// interval the ACS sets) and a second after a Reboot/FactoryReset/Download/Upload (to report
// it), and prints each session. Development only; traffic goes where --acs says.
//
//   npm run build && node dist/tools/sim-cpe.js [--acs http://127.0.0.1:7547/] [--serial DEMO0001]
//                                                [--model tr181|tr098] [--interval 300]
import { CrListener } from '../test/support/cr-listener';
import { SimRouter } from './sim/router';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : def;
}

async function main(): Promise<void> {
  const acsUrl = arg('acs', 'http://127.0.0.1:7547/');
  const serial = arg('serial', 'DEMO0001');
  const model = arg('model', 'tr181');
  const interval = Number(arg('interval', '300'));
  if (model !== 'tr181' && model !== 'tr098') throw new Error('--model is tr181 or tr098');
  const root = model === 'tr181' ? 'Device.' : 'InternetGatewayDevice.';
  const now = () => new Date().toISOString();

  let router: SimRouter | undefined;
  // The listener checks the credentials the ACS gave the device (at BOOTSTRAP), as a router does.
  const listener = await CrListener.start({
    credentials: () => router!.credentials(),
    onWake: () => router!.wake(),
  });
  router = new SimRouter({
    cpe: {
      url: acsUrl,
      dataModel: model,
      deviceId: { manufacturer: 'SimCo', oui: model === 'tr181' ? '0090D0' : '00259E', productClass: 'SimRouter', serialNumber: serial },
      params: {
        [`${root}ManagementServer.ConnectionRequestURL`]: { value: listener.url, type: 'xsd:string' },
        [`${root}ManagementServer.PeriodicInformInterval`]: { value: String(interval), type: 'xsd:unsignedInt', writable: true },
      },
    },
    onSession: (r) => {
      const asked = r.acsRequests.map((q) => q.method).join(', ') || 'nothing';
      console.log(`${now()} session [${r.events.map((e) => e.eventCode).join(', ')}] → ACS asked: ${asked} → ${r.ended}${r.error ? ` (${r.error.message})` : ''}`);
    },
    onDownload: (d) => console.log(`${now()} downloaded ${d.bytes} bytes from ${d.url.split('?')[0]}${d.version ? `; software version now ${d.version}` : ''}`),
  });
  console.log(`simulated CPE ${router.id} (${model}) → ${acsUrl}; connection requests at ${listener.url}`);
  router.start();
  const stop = () => {
    void router!.stop().then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((err) => {
  console.error((err as Error).message);
  process.exit(1);
});
