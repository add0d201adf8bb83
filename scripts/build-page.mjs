// `npm run build` (and `prepare`): bundle the browser page into dist/page after tsc has compiled
// src/ (the bundler itself is src/web/bundle.ts).
import { buildDistPage } from '../dist/web/bundle.js';

const out = await buildDistPage();
process.stdout.write(`page bundled into ${out}\n`);
