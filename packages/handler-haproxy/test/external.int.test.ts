/**
 * external mode: an operator's own HAProxy (master-worker, started by the testkit), reloaded by a
 * configured command; a user template; a broken template keeps the old routes serving.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type DockerEngine,
  freePort,
  type HaproxyProcess,
  httpGet,
  requireBinary,
  startDockerd,
  startHaproxy,
  tally,
  tempDir,
  waitFor,
} from '@glue/testkit';
import { silentLogger } from '@glue/core';
import { balancerMain } from '../src/balancer.js';
import { DEFAULT_TEMPLATE } from '../src/template.js';
import { startBalancer, type RunningBalancer } from './helpers.js';

let engine: DockerEngine;
let dir: { path: string; cleanup: () => Promise<void> };
let haproxy: HaproxyProcess;
let lb: RunningBalancer;
let port: number;
let template: string;
const status = async (host: string): Promise<string> => {
  const r = await httpGet(`http://127.0.0.1:${port}/`, { host });
  return `${r.status} ${r.body.trim()}`;
};

beforeAll(async () => {
  requireBinary('haproxy');
  engine = await startDockerd();
  dir = await tempDir('glue-lb-ext-');
  port = await freePort();
  haproxy = await startHaproxy(
    `global\ndefaults\n    mode http\n    timeout connect 5s\n    timeout client 30s\n    timeout server 30s\nfrontend placeholder\n    bind 127.0.0.1:${port}\n    http-request deny deny_status 503\n`,
  );
  template = join(dir.path, 'haproxy.cfg.njk');
  writeFileSync(template, `# operator's template\n${DEFAULT_TEMPLATE}`);
  lb = await startBalancer([
    '--docker-url',
    engine.url,
    '--mode',
    'external',
    '--config-file',
    haproxy.configFile,
    // The operator's HAProxy wrote that file: Glue takes it over (the original is kept beside it).
    '--takeover',
    'yes',
    '--reload-command',
    haproxy.reloadCommand().join(' '),
    '--runtime-socket',
    join(haproxy.dir, 'runtime.sock'),
    '--template',
    template,
    '--http-bind',
    `127.0.0.1:${port}`,
    '--debounce-ms',
    '20',
  ]);
});

afterAll(async () => {
  await lb?.stop();
  await haproxy?.stop();
  await engine?.stop();
  await dir?.cleanup();
});

describe('external mode with a user template', () => {
  it("writes the config from the user template and reloads the operator's HAProxy", async () => {
    await engine.run({ name: 'a1', labels: { glue_http_80_host: 'a.example.com' } });
    await waitFor(async () => (await status('a.example.com')) === '200 a1', {
      timeoutMs: 20_000,
      what: 'a1 through the external HAProxy',
    });
    expect(lb.handler.stats.reloads).toBeGreaterThan(0);
  });

  it('a server joining uses the runtime socket the template declares', async () => {
    await lb.handler.applier.settled();
    const reloads = lb.handler.stats.reloads;
    await engine.run({ name: 'a2', labels: { glue_http_80_host: 'a.example.com' } });
    await waitFor(async () => (await tally(`http://127.0.0.1:${port}/`, 'a.example.com', 4)).a2 === 2, {
      timeoutMs: 10_000,
      what: 'a2 in rotation',
    });
    expect(lb.handler.stats.reloads).toBe(reloads);
  });

  it('a bad template: haproxy -c error in the log, old routes keep serving, no temp file; fixed template applies', async () => {
    writeFileSync(template, `global\n    no-such-directive on\n${DEFAULT_TEMPLATE}`);
    await engine.run({ name: 'b1', labels: { glue_http_80_host: 'b.example.com' } });
    const line = await waitFor(() => lb.logs.find((l) => /haproxy -c rejected the new config/.test(l.msg)), {
      timeoutMs: 15_000,
      what: 'the haproxy -c failure in the log',
    });
    expect(line.msg).toMatch(/unknown keyword 'no-such-directive'/);
    expect(await status('a.example.com')).toMatch(/^200 a[12]$/);
    expect(await status('b.example.com')).toMatch(/^503/);
    expect(readdirSync(haproxy.dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    // A template nunjucks cannot even parse: same outcome, its own message.
    writeFileSync(template, '{% if %}');
    await engine.run({ name: 'b2', labels: { glue_http_80_host: 'b.example.com' } });
    await waitFor(() => lb.logs.find((l) => /cannot render the HAProxy template/.test(l.msg)), {
      timeoutMs: 15_000,
      what: 'the render failure in the log',
    });
    expect(await status('a.example.com')).toMatch(/^200 a[12]$/);
    // Fixed: the next change applies everything that piled up.
    writeFileSync(template, DEFAULT_TEMPLATE);
    await engine.run({ name: 'c1', labels: { glue_http_80_host: 'c.example.com' } });
    await waitFor(async () => (await status('c.example.com')) === '200 c1', {
      timeoutMs: 15_000,
      what: 'c1 after the fix',
    });
    expect(await status('b.example.com')).toMatch(/^200 b[12]$/);
  });

  it('glue-balancer -1 --mode file writes a checked config for the running containers and exits 0', async () => {
    const out = join(dir.path, 'once.cfg');
    let stderr = '';
    const code = await balancerMain(
      ['-1', '--mode', 'file', '--config-file', out, '--docker-url', engine.url, '--http-bind', '127.0.0.1:18085'],
      { stderr: (t) => (stderr += t), logger: silentLogger() },
    );
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const text = readFileSync(out, 'utf8');
    expect(text).toMatch(/^ {4}server a1:80 \S+:80 weight 100$/m);
    expect(text).toMatch(/^ {4}server c1:80 \S+:80 weight 100$/m);
  });
});
