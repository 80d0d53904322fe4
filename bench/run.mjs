#!/usr/bin/env node
// `pnpm bench [name ...]`: runs every benchmark in bench/ (bench/NAME.mjs or bench/NAME/run.mjs) one
// after the other, each in its own node with --expose-gc. Benchmarks print figures and ratios to goals;
// they are never part of `pnpm test`.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = fileURLToPath(new URL('.', import.meta.url));
const all = readdirSync(dir)
  .sort()
  .flatMap((entry) => {
    const path = join(dir, entry);
    if (statSync(path).isDirectory())
      return existsSync(join(path, 'run.mjs')) ? [{ name: entry, file: join(path, 'run.mjs') }] : [];
    return entry.endsWith('.mjs') && entry !== 'run.mjs' ? [{ name: entry.replace(/\.mjs$/, ''), file: path }] : [];
  });
const wanted = process.argv.slice(2);
const chosen = wanted.length > 0 ? all.filter((b) => wanted.some((w) => b.name.startsWith(w))) : all;
if (chosen.length === 0) {
  console.error(`bench: nothing matches ${wanted.join(' ')}; have: ${all.map((b) => b.name).join(', ')}`);
  process.exit(2);
}
let failed = 0;
for (const b of chosen) {
  console.log(`\n### ${b.name}`);
  const r = spawnSync(process.execPath, ['--expose-gc', b.file], { stdio: 'inherit' });
  if (r.status !== 0) {
    failed++;
    console.log(`### ${b.name} failed (exit ${r.status ?? r.signal})`);
  }
}
process.exit(failed > 0 ? 1 : 0);
