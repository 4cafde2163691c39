// Prints the size of the built console (JavaScript and CSS, gzip) and fails
// when it passes the budget. Run by `cargo xtask console` after the build.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

const BUDGET_BYTES = 400 * 1024;
const dist = new URL('../dist/assets/', import.meta.url).pathname;

let raw = 0;
let gzip = 0;
const files = [];
for (const name of readdirSync(dist)) {
  if (!/\.(js|css)$/.test(name)) continue;
  const bytes = readFileSync(join(dist, name));
  const zipped = gzipSync(bytes, { level: 9 }).length;
  raw += statSync(join(dist, name)).size;
  gzip += zipped;
  files.push([name, zipped]);
}
files.sort((a, b) => b[1] - a[1]);
const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
console.log(`console bundle: ${files.length} files, ${kb(raw)} raw, ${kb(gzip)} gzip (budget ${kb(BUDGET_BYTES)})`);
for (const [name, zipped] of files.slice(0, 5)) console.log(`  ${kb(zipped).padStart(9)}  ${name}`);
if (gzip > BUDGET_BYTES) {
  console.error(`the console bundle (${kb(gzip)} gzip) is over its ${kb(BUDGET_BYTES)} budget`);
  process.exit(1);
}
