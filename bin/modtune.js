#!/usr/bin/env node
const { relaunchWithHugePages } = await import('../dist/cli/huge-pages.js');
if (!relaunchWithHugePages(process.argv)) (await import('../dist/cli/main.js')).main(process.argv);
