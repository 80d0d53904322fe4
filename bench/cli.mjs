#!/usr/bin/env node
// CLI start-up: `glue -h` must answer without loading the daemon (core, dockerode). Prints the median
// of GLUE_BENCH_RUNS (default 15) runs of each, with `node -e 0` as the floor:
//   glue -h: goal <= 120 ms
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { line, pct } from './lib/report.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const GLUE = join(root, 'packages/cli/dist/bin/glue.js');
const BALANCER = join(root, 'packages/handler-haproxy/dist/bin/glue-balancer.js');
const RUNS = Number(process.env.GLUE_BENCH_RUNS ?? 15);

function median(args) {
  const times = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = process.hrtime.bigint();
    const r = spawnSync(process.execPath, args, { stdio: 'ignore' });
    if (r.status !== 0) throw new Error(`${args.join(' ')} exited ${r.status}`);
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return pct(times, 50);
}

const floor = median(['-e', '0']);
line('node -e 0 (the floor)', floor, 'ms');
line('glue -h', median([GLUE, '-h']), 'ms', 120);
line('glue --version', median([GLUE, '--version']), 'ms', 120);
line('glue-balancer -h (loads the HAProxy package)', median([BALANCER, '-h']), 'ms');
