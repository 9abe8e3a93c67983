// XML parsing cost of the hot message: the periodic Inform as the bench's CPEs send it, parsed
// (1) by the codec (parseEnvelope: xml2js tree + typed message), (2) by parseXml alone (the
// xml2js tree), (3) by sax alone with no handlers: the floor for any parser built on sax, which
// xml2js is. The difference between (2) and (3) is what replacing xml2js's tree building could
// save at most; compare it with the ACS CPU per session from `npm run bench`.
//
//   node dist/bench/xml.js [--seconds 3]
import { parseEnvelope } from '../cwmp/codec';
import { parseXml } from '../cwmp/xml';
import { makeFleet } from '../test/support/cpe';

// sax is the parser xml2js drives (installed with it; no types of its own here).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const sax = require('sax') as { parser(strict: boolean): { write(s: string): { close(): void } } };

function rate(name: string, seconds: number, fn: () => void): number {
  for (let i = 0; i < 2000; i++) fn(); // warm up
  let n = 0;
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  while (performance.now() < end) {
    for (let i = 0; i < 500; i++) fn();
    n += 500;
  }
  const us = ((performance.now() - t0) * 1000) / n;
  process.stdout.write(`${name.padEnd(44)} ${us.toFixed(1).padStart(7)} µs per Inform\n`);
  return us;
}

function main(): void {
  const i = process.argv.indexOf('--seconds');
  const seconds = i > 0 ? Number(process.argv[i + 1]) : 3;
  const xml = makeFleet(1, { url: 'http://127.0.0.1/', serialPrefix: 'X' })[0].informXml();
  process.stdout.write(`Inform of ${Buffer.byteLength(xml)} bytes, ${(xml.match(/<ParameterValueStruct>/g) ?? []).length} parameters\n`);
  const codec = rate('parseEnvelope (xml2js tree + typed message)', seconds, () => parseEnvelope(xml));
  const tree = rate('parseXml (xml2js tree)', seconds, () => parseXml(xml));
  const floor = rate('sax, no handlers (floor)', seconds, () => sax.parser(true).write(xml).close());
  process.stdout.write(`xml2js's tree building over sax: ${(tree - floor).toFixed(1)} µs; typed message: ${(codec - tree).toFixed(1)} µs\n`);
}

main();
