/**
 * `pnpm demo`, the README's first set-up command after `scripts/setup.sh`, as a user runs it: a
 * container labelled glue_http_80_host=demo.example.com answers through the HAProxy Glue runs, is gone
 * from it once stopped, and the script handler's record is shown.
 */
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { expect, it } from 'vitest';
import { requireBinary } from '@glue/testkit';

const DEMO = fileURLToPath(new URL('../../../scripts/demo.mjs', import.meta.url));

it('pnpm demo: Host routing through HAProxy, gone on stop, the script record shown', async () => {
  requireBinary('haproxy');
  requireBinary('dockerd');
  const r = await execa(process.execPath, [DEMO], { reject: false, timeout: 120_000, all: true });
  expect(r.exitCode, r.all).toBe(0);
  const out = r.all ?? '';
  expect(out).toMatch(/curl -H 'Host: demo\.example\.com' http:\/\/127\.0\.0\.1:\d+\/ {2}-> {2}200 glue-demo-web/);
  expect(out).toMatch(/curl -H 'Host: other\.example\.com' \S+ {2}-> {2}(404|503)/);
  expect(out).toMatch(/docker stop glue-demo-web[\s\S]*Host: demo\.example\.com' \S+ {2}-> {2}503/);
  expect(out).toMatch(/\[start\][\s\S]*\[destroy\]/);
});
