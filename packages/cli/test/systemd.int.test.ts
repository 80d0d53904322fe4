/**
 * The systemd units in packaging/systemd pass `systemd-analyze verify` (offline: nothing is installed or
 * started) with their ExecStart pointed at the built bins, start the bins directly (never npx or pnpm,
 * so signals reach Glue), stop Glue alone first (KillMode=mixed) and keep the hardening. A warning of
 * systemd-analyze fails the test too: it exits 0 on directives it ignores.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBinary, tempDir } from '@glue/testkit';

const UNITS = fileURLToPath(new URL('../../../packaging/systemd/', import.meta.url));
const BINS: Record<string, string> = {
  '/usr/local/bin/glue': fileURLToPath(new URL('../dist/bin/glue.js', import.meta.url)),
  '/usr/local/bin/glue-balancer': fileURLToPath(
    new URL('../../handler-haproxy/dist/bin/glue-balancer.js', import.meta.url),
  ),
};
let analyze: string;
let dir: { path: string; cleanup: () => Promise<void> };

beforeAll(async () => {
  analyze = requireBinary('systemd-analyze');
  dir = await tempDir('glue-systemd-');
});
afterAll(async () => dir?.cleanup());

/** `systemd-analyze verify` of `text` as `name`: exit code and everything it printed. */
function verify(name: string, text: string): { status: number | null; output: string } {
  let local = text;
  for (const [bin, built] of Object.entries(BINS))
    local = local.replaceAll(`ExecStart=${bin} `, `ExecStart=${process.execPath} ${built} `);
  const file = join(dir.path, name);
  writeFileSync(file, local);
  const r = spawnSync(analyze, ['verify', file], { encoding: 'utf8' });
  return { status: r.status, output: `${r.stdout}${r.stderr}`.trim() };
}

describe.each(['glue.service', 'glue-balancer.service'])('%s', (name) => {
  const text = (): string => readFileSync(join(UNITS, name), 'utf8');

  it('passes systemd-analyze verify without a word', () => {
    expect(verify(name, text())).toEqual({ status: 0, output: '' });
  });

  it('starts the bin itself, after the engine, restarts on failure, stops Glue first, and is hardened', () => {
    const t = text();
    const exec = /^ExecStart=(\S+)/m.exec(t)?.[1];
    expect(Object.keys(BINS)).toContain(exec);
    expect(t).not.toMatch(/^ExecStart=.*\b(npx|pnpm|npm)\b/m);
    for (const line of [
      'After=docker.service network-online.target',
      'Restart=on-failure',
      'KillMode=mixed',
      'NoNewPrivileges=yes',
      'PrivateTmp=yes',
      'ProtectControlGroups=yes',
    ])
      expect(t).toContain(`${line}\n`);
    expect(t).toMatch(/^ProtectSystem=(full|strict)$/m);
    // The bin it names answers -h (what ExecStart runs exists and starts).
    expect(execFileSync(process.execPath, [BINS[exec!]!, '-h'], { encoding: 'utf8' })).toMatch(/-w, --watch/);
  });

  it('the check can fail: a directive systemd ignores is reported', () => {
    const broken = text().replace('Restart=on-failure', 'Restart=sometimes');
    const r = verify(`broken-${name}`, broken);
    expect(r.output).toMatch(/Failed to parse service restart specifier/);
  });
});
