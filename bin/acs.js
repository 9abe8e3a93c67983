#!/usr/bin/env node
// Entry point for `npx acs …`; the code is TypeScript compiled to dist/ by `npm run build`.
require('../dist/src/cli.js');
