// `npm run build` step for the report page: copies web/ and the chart library's prebuilt files
// (uPlot ships a ready IIFE build and its CSS) to dist/web/, where the API server serves them
// from. No bundler: the page is plain JavaScript. Without a build the server serves web/ and
// node_modules/uplot/dist/ directly.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const out = path.join(root, 'dist', 'web');
fs.mkdirSync(out, { recursive: true });
const files = [
  ['web/reports.html', 'reports.html'],
  ['web/reports.js', 'reports.js'],
  ['web/reports.css', 'reports.css'],
  ['node_modules/uplot/dist/uPlot.iife.min.js', 'uPlot.iife.min.js'],
  ['node_modules/uplot/dist/uPlot.min.css', 'uPlot.min.css'],
  ['node_modules/uplot/LICENSE', 'uPlot.LICENSE.txt'],
];
for (const [from, to] of files) {
  const src = path.join(root, from);
  if (!fs.existsSync(src)) {
    console.error(`web build: ${from} is missing (npm install?)`);
    process.exit(1);
  }
  fs.copyFileSync(src, path.join(out, to));
}
console.log(`web build: ${files.length} files in dist/web`);
