/**
 * `glue check` / `glue -t` against a real engine: every INI problem (file, line, section, key) and
 * every bad container label (container, label, value, and the handler whose grammar refused it),
 * exit 0 or 2; without an engine it checks the files and says the labels were not checked.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DockerEngine, startDockerd, tempDir } from '@glue/testkit';
import { runGlue } from './glue-process.js';

let engine: DockerEngine;
let tmp: { path: string; cleanup: () => Promise<void> };

beforeAll(async () => {
  [engine, tmp] = await Promise.all([startDockerd(), tempDir('glue-check-')]);
});
afterAll(async () => {
  await engine?.stop();
  await tmp?.cleanup();
});

function conf(name: string, files: Record<string, string>): string {
  const dir = join(tmp.path, name);
  mkdirSync(dir, { recursive: true });
  for (const [file, text] of Object.entries(files)) writeFileSync(join(dir, file), text);
  return dir;
}

const LB = `[handler]\nclass=@glue/handler-haproxy#HAProxyHandler\nevents=start,kill,die,none\n\n[params]\nmode=file\nconfig-file=${'/tmp/glue-check-never-written/haproxy.cfg'}\n`;
const OVS = '[handler]\nclass=@glue/handler-ovs#OVSHandler\nevents=start,die,none\n\n[params]\novs-bridge=br-check\n';

describe('glue check', () => {
  it('good files and good labels: exit 0 with a summary', async () => {
    await engine.run({ name: 'fine', labels: { glue_http_80_host: 'fine.example.com' } });
    const dir = conf('good', { 'lb.ini': LB });
    const r = await runGlue(['check', '-c', dir, '--docker-url', engine.url]);
    expect(r.stdout).toMatch(
      /^glue check: 1 handler\(s\) loaded: lb\.ini; \d+ container\(s\) checked: 0 label problem\(s\)\n$/,
    );
    expect(r.code).toBe(0);
  });

  it('bad labels: one line each, naming container, label, value and the grammar; exit 2', async () => {
    await engine.run({ name: 'badhost', labels: { glue_http_80_host: 'not a host' } });
    await engine.run({ name: 'typo', labels: { glue_htp_80_host: 'typo.example.com' } });
    await engine.run({ name: 'badvlan', network: 'none', labels: { glue_ovs_vlan: '9999', glue_ovs_color: 'red' } });
    const dir = conf('labels', { 'lb.ini': LB, 'ovs.ini': OVS });
    const r = await runGlue(['-t', '-c', dir, '--docker-url', engine.url]);
    expect(r.code, r.stderr).toBe(2);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^container badhost: label glue_http_80_host="not a host" /),
        'container typo: label glue_htp_80_host="typo.example.com" is read by no handler loaded (glue_http_*, glue_tcp_*, glue_network, glue_ovs_*)',
        expect.stringMatching(
          /^container badvlan: label glue_ovs_color="red" is not a known label \(known: .*\) \(ovs\.ini\)$/,
        ),
        expect.stringMatching(/^container badvlan: label glue_ovs_vlan="9999" .* \(ovs\.ini\)$/),
      ]),
    );
    expect(lines.at(-1)).toMatch(
      /^glue check: 2 handler\(s\) loaded: lb\.ini, ovs\.ini; \d+ container\(s\) checked: 4 label problem\(s\)$/,
    );
  });

  it('bad INI files: every problem with file, line, section and key; exit 2', async () => {
    // A file Glue cannot read as a handler (an unknown event) is reported before anything is built.
    const early = conf('ini-early', {
      'a.ini': '[handler]\nclass=@glue/handler-exec#ScriptHandler\nevents=start,bogus\n\n[params]\nscript=x.sh\n',
    });
    const r1 = await runGlue(['check', '-c', early, '--docker-url', engine.url]);
    expect(r1.code).toBe(2);
    expect(r1.stdout).toMatch(/a\.ini:3 \[handler\] events: unknown event "bogus"/);
    // The handlers' own params, of every file at once.
    const dir = conf('ini', {
      'a.ini': '[handler]\nclass=@glue/handler-exec#ScriptHandler\nevents=start\n\n[params]\nscript=nope.sh\n',
      'b.ini': `${LB}check-timeout=forever\n`,
    });
    const r = await runGlue(['check', '-c', dir, '--docker-url', engine.url]);
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(/a\.ini:6 \[params\] script: .*nope\.sh/);
    expect(r.stdout).toMatch(/b\.ini:\d+ \[params\] check-timeout: "forever"/);
    expect(r.stdout).toMatch(/glue check: 2 problem\(s\) in the INI files; \d+ container\(s\) checked/);
    // Labels of families no loaded handler claims are not blamed while handlers failed to load.
    expect(r.stdout).not.toMatch(/read by no handler/);
  });

  it('no engine: the files are checked, the labels are said not to be', async () => {
    const dir = conf('noengine', { 'lb.ini': LB });
    const r = await runGlue(['check', '-c', dir, '--docker-url', `unix://${tmp.path}/nothing.sock`]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /container labels not checked: cannot reach the Docker engine at unix:\/\/.*nothing\.sock/,
    );
  });
});
