/**
 * The seed README's scenario against a real dockerd and a real HAProxy run by glue-balancer in
 * managed mode on a loopback port: wp1, wp2, openstack with two prefixes; then removal, weights,
 * pause, health gating, a bad label, the runtime API fast path and a TCP service.
 */
import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type DockerEngine,
  freePort,
  httpGet,
  requireBinary,
  startDockerd,
  tally,
  tempDir,
  waitFor,
} from '@glue/testkit';
import { startBalancer, type RunningBalancer } from './helpers.js';

let engine: DockerEngine;
let dir: { path: string; cleanup: () => Promise<void> };
let lb: RunningBalancer;
let port: number;
let tcpPort: number;
const url = (path: string): string => `http://127.0.0.1:${port}${path}`;
const get = (path: string, host: string) => httpGet(url(path), { host });
/** Serves `files` (path -> body) from /www plus index.html naming the container. */
const serve = (files: Record<string, string>): string[] => {
  const script = ['mkdir -p /www', 'echo "$GLUE_PAGE" > /www/index.html'];
  for (const [p, body] of Object.entries(files))
    script.push(`mkdir -p "/www$(dirname ${p})"`, `echo '${body}' > /www${p}`);
  script.push('exec httpd -f -p 80 -h /www');
  return ['sh', '-c', script.join(' && ')];
};
const body = async (path: string, host: string): Promise<string> => {
  const r = await get(path, host);
  return `${r.status} ${r.body.trim()}`;
};

beforeAll(async () => {
  requireBinary('haproxy');
  engine = await startDockerd();
  dir = await tempDir('glue-lb-seed-');
  port = await freePort();
  tcpPort = await freePort();
  lb = await startBalancer([
    '--docker-url',
    engine.url,
    '--mode',
    'managed',
    '--config-file',
    `${dir.path}/haproxy.cfg`,
    '--http-bind',
    `127.0.0.1:${port}`,
    '--tcp-address',
    '127.0.0.1',
    '--debounce-ms',
    '20',
  ]);
});

afterAll(async () => {
  await lb?.stop();
  await engine?.stop();
  await dir?.cleanup();
});

describe('seed README scenario through HAProxy', () => {
  it('routes wp1, wp2 and the two openstack prefixes by Host (any case, with or without :port)', async () => {
    await engine.run({ name: 'wp1', labels: { glue_http_80_host: 'wp1.example.com' } });
    await engine.run({ name: 'wp2', labels: { glue_http_80_host: 'wp2.example.com' } });
    await engine.run({
      name: 'os-ui1',
      labels: {
        glue_http_80_host: 'openstack.example.com',
        glue_http_80_prefix: 'dashboard/horizon',
        glue_http_80_strip_prefix: '1',
      },
      cmd: serve({ '/x.txt': 'os-ui1 got /x.txt' }),
    });
    await engine.run({
      name: 'os-id1',
      labels: { glue_http_80_host: 'openstack.example.com', glue_http_80_prefix: '/identity/keystone' },
      cmd: serve({ '/identity/keystone/index.html': 'os-id1 got /identity/keystone/' }),
    });
    await waitFor(
      async () => (await body('/identity/keystone/', 'openstack.example.com')) === '200 os-id1 got /identity/keystone/',
      { timeoutMs: 20_000, what: 'the four routes' },
    );
    expect(await body('/', 'wp1.example.com')).toBe('200 wp1');
    expect(await body('/', 'WP1.Example.COM')).toBe('200 wp1');
    expect(await body('/', `wp2.example.com:${port}`)).toBe('200 wp2');
    expect(await body('/', 'Wp2.EXAMPLE.com:80')).toBe('200 wp2');
    expect(await body('/', 'nobody.example.com')).toMatch(/^503/);
  });

  it('matches prefixes on a segment boundary and strips them on the way in', async () => {
    expect(await body('/dashboard/horizon', 'openstack.example.com')).toBe('200 os-ui1');
    expect(await body('/dashboard/horizon/x.txt?a=1', 'openstack.example.com')).toBe('200 os-ui1 got /x.txt');
    expect(await body('/dashboard/horizonX', 'openstack.example.com')).toMatch(/^503/);
    // Not stripped: the keystone container sees the full path.
    expect(await body('/identity/keystone/', 'OpenStack.example.com:443')).toBe('200 os-id1 got /identity/keystone/');
    expect(await body('/identity', 'openstack.example.com')).toMatch(/^503/);
  });

  it('a container joining an existing host goes in through the runtime API, without a reload', async () => {
    await lb.handler.applier.settled();
    const reloads = lb.handler.stats.reloads;
    const runtime = lb.handler.stats.runtimeApplies;
    await engine.run({ name: 'wp1b', labels: { glue_http_80_host: 'wp1.example.com' } });
    await waitFor(async () => (await tally(url('/'), 'wp1.example.com', 4)).wp1b === 2, {
      timeoutMs: 10_000,
      what: 'wp1b in rotation',
    });
    expect(lb.handler.stats.reloads).toBe(reloads);
    expect(lb.handler.stats.runtimeApplies).toBeGreaterThan(runtime);
  });

  it('a stopped container stops receiving traffic', async () => {
    await engine.cli(['kill', 'wp1b']);
    await waitFor(async () => (await tally(url('/'), 'wp1.example.com', 6)).wp1 === 6, {
      timeoutMs: 10_000,
      what: 'wp1b out of rotation',
    });
    await engine.cli(['rm', '-f', 'wp2']);
    await waitFor(async () => (await get('/', 'wp2.example.com')).status === 503, {
      timeoutMs: 10_000,
      what: 'wp2 gone',
    });
  });

  it('weights 3:1 (150 and 50) split 400 requests 300:100 within +-20; a weight of 300 is refused', async () => {
    await engine.run({
      name: 'heavy',
      labels: { glue_http_80_host: 'weights.example.com', glue_http_80_weight: '150' },
    });
    await engine.run({
      name: 'light',
      labels: { glue_http_80_host: 'weights.example.com', glue_http_80_weight: '50' },
    });
    await waitFor(async () => (await tally(url('/'), 'weights.example.com', 8)).light !== undefined, {
      timeoutMs: 10_000,
      what: 'both weighted servers',
    });
    const counts = await tally(url('/'), 'weights.example.com', 400);
    expect(Math.abs((counts.heavy ?? 0) - 300)).toBeLessThanOrEqual(20);
    expect(Math.abs((counts.light ?? 0) - 100)).toBeLessThanOrEqual(20);
    await engine.run({
      name: 'too-heavy',
      labels: { glue_http_80_host: 'weights.example.com', glue_http_80_weight: '300' },
    });
    await waitFor(() => lb.logs.find((l) => l.label === 'glue_http_80_weight' && l.value === '300'), {
      timeoutMs: 10_000,
      what: 'the weight=300 log line',
    });
    expect((await tally(url('/'), 'weights.example.com', 8))['too-heavy']).toBeUndefined();
  });

  it('a crafted label drops only its own route, and the log names container, label and value', async () => {
    await engine.run({
      name: 'evil',
      labels: { glue_http_80_host: 'evil.example.com\n    server x 1.2.3.4:80', glue_http_81_host: 'fine.example.com' },
      cmd: ['sh', '-c', 'mkdir -p /www && echo evil > /www/index.html && exec httpd -f -p 81 -h /www'],
    });
    const line = await waitFor(
      () => lb.logs.find((l) => l.containerName === 'evil' && l.label === 'glue_http_80_host'),
      { timeoutMs: 10_000, what: 'the log line for evil' },
    );
    expect(line.msg).toContain('container evil: label glue_http_80_host="evil.example.com\\n    server x 1.2.3.4:80"');
    await waitFor(async () => (await body('/', 'fine.example.com')) === '200 evil', {
      timeoutMs: 10_000,
      what: 'the valid port of the same container',
    });
    expect(await body('/', 'wp1.example.com')).toBe('200 wp1');
  });

  it('paused and unhealthy/starting containers are out of rotation until healthy', async () => {
    await engine.cli(['pause', 'wp1']);
    await waitFor(async () => (await get('/', 'wp1.example.com')).status === 503, {
      timeoutMs: 10_000,
      what: 'paused wp1 out',
    });
    await engine.cli(['unpause', 'wp1']);
    await waitFor(async () => (await body('/', 'wp1.example.com')) === '200 wp1', {
      timeoutMs: 10_000,
      what: 'unpaused wp1 back',
    });

    await engine.run({
      name: 'slow',
      labels: { glue_http_80_host: 'health.example.com' },
      healthcheck: { test: ['CMD', 'test', '-f', '/www/ready'], intervalMs: 300, retries: 1 },
    });
    await new Promise((r) => setTimeout(r, 1000));
    expect((await get('/', 'health.example.com')).status).toBe(503);
    await engine.cli(['exec', 'slow', 'touch', '/www/ready']);
    await waitFor(async () => (await body('/', 'health.example.com')) === '200 slow', {
      timeoutMs: 15_000,
      what: 'healthy container in rotation',
    });
  });

  it('takes the address on a user-defined network; a container without an address is skipped with the reason', async () => {
    await engine.createNetwork('backnet');
    const c = await engine.run({
      name: 'netted',
      network: 'backnet',
      labels: { glue_http_80_host: 'net.example.com' },
    });
    await waitFor(async () => (await body('/', 'net.example.com')) === '200 netted', {
      timeoutMs: 10_000,
      what: 'the container on backnet',
    });
    const chosen = lb.logs.find((l) => l.containerName === 'netted' && l.network === 'backnet');
    expect(chosen?.msg).toBe(`container netted: using ${c.ip} on network backnet (its only network)`);
    await engine.run({
      name: 'isolated',
      network: 'none',
      labels: { glue_http_80_host: 'none.example.com' },
      cmd: ['sleep', '3600'],
    });
    const skipped = await waitFor(
      () => lb.logs.find((l) => l.containerName === 'isolated' && typeof l.reason === 'string'),
      { timeoutMs: 10_000, what: 'the skip line' },
    );
    expect(skipped.msg).toMatch(
      /container isolated is out of rotation: no IP address on any network \(network mode none\)/,
    );
  });

  it('the query string reaches the backend after the prefix is stripped', async () => {
    // A busybox httpd CGI that answers with the request URI it received.
    const cgi = '#!/bin/sh\nprintf "Content-Type: text/plain\\r\\n\\r\\n%s\\n" "$REQUEST_URI"\n';
    await engine.run({
      name: 'echo-uri',
      labels: { glue_http_80_host: 'uri.example.com', glue_http_80_prefix: 'app', glue_http_80_strip_prefix: 'true' },
      env: [`GLUE_CGI=${cgi}`],
      cmd: [
        'sh',
        '-c',
        'mkdir -p /www/cgi-bin && printf "%s" "$GLUE_CGI" > /www/cgi-bin/uri && chmod +x /www/cgi-bin/uri && exec httpd -f -p 80 -h /www',
      ],
    });
    await waitFor(async () => (await get('/app/cgi-bin/uri', 'uri.example.com')).status === 200, {
      timeoutMs: 10_000,
      what: 'the echo-uri route',
    });
    expect(await body('/app/cgi-bin/uri?a=1', 'uri.example.com')).toBe('200 /cgi-bin/uri?a=1');
    expect(await body('/app/cgi-bin/uri?a=1&b=x%20y', 'uri.example.com')).toBe('200 /cgi-bin/uri?a=1&b=x%20y');
  });

  it('TCP labels give a TCP frontend on the chosen port', async () => {
    await engine.run({ name: 'tcp1', labels: { glue_tcp_80_port: String(tcpPort) } });
    await waitFor(async () => (await httpGet(`http://127.0.0.1:${tcpPort}/`)).body.trim() === 'tcp1', {
      timeoutMs: 10_000,
      what: 'the TCP frontend',
    });
  });

  it('a TCP port another program holds leaves only that service out; it comes back once the port is free', async () => {
    const busyPort = await freePort();
    const occupier: Server = createServer((c) => c.end('occupier\n'));
    await new Promise<void>((r) => occupier.listen(busyPort, '127.0.0.1', () => r()));
    try {
      await engine.run({ name: 'tcp-busy', labels: { glue_tcp_80_port: String(busyPort) } });
      await engine.run({ name: 'after-busy', labels: { glue_http_80_host: 'after-busy.example.com' } });
      await waitFor(async () => (await body('/', 'after-busy.example.com')) === '200 after-busy', {
        timeoutMs: 15_000,
        what: 'the HTTP route started after the busy TCP one',
      });
      const line = await waitFor(
        () => lb.logs.find((l) => l.containerName === 'tcp-busy' && l.label === 'glue_tcp_80_port'),
        { timeoutMs: 10_000, what: 'the log line for tcp-busy' },
      );
      expect(line.value).toBe(String(busyPort));
      expect(line.msg).toContain(`container tcp-busy label glue_tcp_80_port=${busyPort}`);
      expect(line.msg).toMatch(/in use by another program \(EADDRINUSE\)/);
      // Server-only changes of other routes still go through.
      await engine.run({ name: 'after-busy2', labels: { glue_http_80_host: 'after-busy.example.com' } });
      await waitFor(async () => (await tally(url('/'), 'after-busy.example.com', 4))['after-busy2'] === 2, {
        timeoutMs: 10_000,
        what: 'after-busy2 in rotation',
      });
    } finally {
      await new Promise((r) => occupier.close(r));
    }
    await waitFor(
      async () => (await httpGet(`http://127.0.0.1:${busyPort}/`).catch(() => undefined))?.body.trim() === 'tcp-busy',
      { timeoutMs: 20_000, what: 'the TCP frontend on the freed port' },
    );
  });

  it('stops HAProxy with glue-balancer', async () => {
    const pid = lb.handler.applier.managed?.pid ?? 0;
    expect(pid).toBeGreaterThan(0);
    expect(await lb.stop()).toBe(0);
    await waitFor(
      () => {
        try {
          process.kill(pid, 0);
          return false;
        } catch {
          return true;
        }
      },
      { timeoutMs: 10_000, what: 'haproxy to exit' },
    );
  });
});
