/**
 * TCP services whose port cannot be bound are left out, so one container cannot freeze every
 * routing update: HAProxy's alert parsed, the bind probe, the retry, and the Applier applying the
 * other routes when a reload fails on a taken port.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server as NetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { captureLogger, fakeContainer } from '@glue/core/contract';
import type { ContainerInspectInfo } from '@glue/core';
import { requireBinary } from '@glue/testkit';
import { Applier } from '../src/applier.js';
import { buildModel } from '../src/model.js';
import { Renderer } from '../src/template.js';
import { bindFailures, boundPorts, probeHost, probePort, TcpGuard } from '../src/tcp-guard.js';

const dir = mkdtempSync(join(tmpdir(), 'glue-tcp-guard-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ALERT =
  '[ALERT]    (8680) : Binding [/run/glue/haproxy.cfg:55] for frontend glue_tcp_in_5000: cannot bind socket (Address already in use) for [127.0.0.1:5000]';

const occupy = async (): Promise<{ server: NetServer; port: number }> => {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const address = server.address();
  return { server, port: typeof address === 'object' && address ? address.port : 0 };
};
const close = (s: NetServer): Promise<void> => new Promise((r) => s.close(() => r()));

const tcpModel = (entries: Array<[name: string, containerPort: number, frontendPort: number]>) =>
  buildModel(
    entries.map(([name, cport, fport]) =>
      fakeContainer({ name, ip: '172.17.0.9', labels: { [`glue_tcp_${cport}_port`]: String(fport) } }),
    ),
  ).model;

describe('HAProxy output and config text', () => {
  it("finds HAProxy 2.6's cannot-bind alerts with their port, proxy and words", () => {
    const out = [
      '[NOTICE]   (1) : haproxy version is 2.6.12',
      ALERT,
      '[ALERT]    (8680) : [haproxy.main()] Some protocols failed to start their listeners! Exiting.',
    ].join('\n');
    expect(bindFailures(out)).toEqual([
      {
        port: 5000,
        proxy: 'glue_tcp_in_5000',
        words:
          'Binding [/run/glue/haproxy.cfg:55] for frontend glue_tcp_in_5000: cannot bind socket (Address already in use) for [127.0.0.1:5000]',
      },
    ]);
    expect(
      bindFailures('[ALERT] (1) : Starting frontend x: cannot bind socket (Permission denied) [[::1]:443]')[0]?.port,
    ).toBe(443);
    expect(bindFailures('reload command failed (exit code 1)')).toEqual([]);
  });

  it('reads the ports a config binds', () => {
    expect(
      [
        ...boundPorts(
          'frontend a\n    bind *:80\n    bind 127.0.0.1:5000 \nfrontend b\n  bind [::1]:443 ssl crt x\n# bind :9\n',
        ),
      ].sort(),
    ).toEqual([443, 5000, 80]);
  });

  it('probes like HAProxy binds tcp-address', async () => {
    expect(probeHost('*')).toBe('0.0.0.0');
    expect(probeHost('[::1]')).toBe('::1');
    const { server, port } = await occupy();
    expect(await probePort('127.0.0.1', port)).toBe('EADDRINUSE');
    await close(server);
    expect(await probePort('127.0.0.1', port)).toBeUndefined();
  });
});

describe('TcpGuard', () => {
  it('leaves out a new port another program holds, with one line naming containers, label and value; takes it back when free', async () => {
    const { server, port } = await occupy();
    const { logger, lines } = captureLogger();
    let retries = 0;
    const guard = new TcpGuard({ address: '127.0.0.1', logger, onRetry: () => (retries += 1), minRetryMs: 100 });
    const model = tcpModel([
      ['db1', 5432, port],
      ['db2', 5432, port],
    ]);
    expect(await guard.review(model, new Set([80]), false)).toBe(true);
    expect(guard.filter(model).tcp).toEqual([]);
    const warn = lines.find((l) => l.port === port);
    expect(warn?.msg).toBe(
      `TCP frontend on port ${port} left out (container db1 label glue_tcp_5432_port=${port}, container db2 label glue_tcp_5432_port=${port}): port 127.0.0.1:${port} is in use by another program (EADDRINUSE); other routes are applied, the port is tried again in 100 ms`,
    );
    expect(warn).toMatchObject({ containers: ['db1', 'db2'], label: 'glue_tcp_5432_port', value: String(port) });
    // Ports the running HAProxy binds are never probed (HAProxy holds them itself).
    const fresh = new TcpGuard({ address: '127.0.0.1', logger, onRetry: () => undefined });
    expect(await fresh.review(model, new Set([port]), false)).toBe(false);
    fresh.stop();

    // Not due yet, and still taken: stays out.
    expect(await guard.review(model, new Set([80]), false)).toBe(false);
    await close(server);
    await new Promise((r) => setTimeout(r, 150));
    expect(retries).toBeGreaterThanOrEqual(1);
    expect(await guard.review(model, new Set([80]), false)).toBe(true);
    expect(guard.filter(model).tcp.map((s) => s.port)).toEqual([port]);
    guard.stop();
  });

  it('leaves out the service a failed reload names; forgets it when the service goes', () => {
    const { logger } = captureLogger();
    const guard = new TcpGuard({ address: '*', logger, onRetry: () => undefined });
    const model = tcpModel([
      ['a', 80, 5000],
      ['b', 80, 6000],
    ]);
    expect(guard.fromReloadFailure(model, `haproxy failed to load the new config:\n${ALERT}`)).toBe(1);
    expect(guard.fromReloadFailure(model, ALERT)).toBe(0);
    expect(guard.ports).toEqual([5000]);
    expect(guard.filter(model).tcp.map((s) => s.port)).toEqual([6000]);
    // filter() is pure; forget() drops what is gone.
    expect(guard.filter(tcpModel([['b', 80, 6000]])).tcp).toHaveLength(1);
    expect(guard.ports).toEqual([5000]);
    guard.forget(tcpModel([['b', 80, 6000]]));
    expect(guard.ports).toEqual([]);
    guard.stop();
  });
});

describe('Applier: a reload that fails on a taken TCP port', () => {
  it('applies the other routes at once and keeps applying later changes', async () => {
    const cfg = join(dir, 'haproxy.cfg');
    const reloads = join(dir, 'reloads');
    // A reload command that fails as HAProxy does while the config binds port 5000.
    const script = `echo x >> ${reloads}; if grep -q 'bind \\*:5000' ${cfg}; then echo '${ALERT}'; exit 1; fi`;
    const containers = new Map<string, ContainerInspectInfo>();
    const put = (name: string, labels: Record<string, string>) =>
      containers.set(name, fakeContainer({ name, ip: `172.17.0.${containers.size + 2}`, labels }));
    const { logger, lines } = captureLogger();
    const applier = new Applier({
      mode: 'external',
      configFile: cfg,
      haproxyBin: requireBinary('haproxy'),
      reloadCommand: ['sh', '-c', script],
      runtimeSocket: '',
      masterSocket: '',
      renderer: new Renderer(),
      settings: { httpBind: '127.0.0.1:18085', tcpAddress: '*', runtimeSocket: '' },
      debounceMs: 5,
      maxDelayMs: 50,
      minReloadIntervalMs: 0,
      fastPath: true,
      checkTimeoutMs: 30_000,
      reloadTimeoutMs: 5000,
      logger,
      compute: () => buildModel([...containers.values()]).model,
      alive: (id: string) => [...containers.values()].some((c) => c.Id === id && c.State?.Running === true),
      handlerName: 'test',
      bindProbe: false,
    });
    put('db', { glue_tcp_5432_port: '5000' });
    put('web', { glue_http_80_host: 'web.example.com' });
    await applier.request();
    expect(applier.excludedTcpPorts).toEqual([5000]);
    expect(readFileSync(cfg, 'utf8')).toContain('server web:80');
    expect(readFileSync(cfg, 'utf8')).not.toContain(':5000');
    expect(lines.find((l) => l.label === 'glue_tcp_5432_port')?.msg).toContain(
      'container db label glue_tcp_5432_port=5000): HAProxy: Binding',
    );
    put('web2', { glue_http_80_host: 'web2.example.com' });
    await applier.request();
    expect(readFileSync(cfg, 'utf8')).toContain('server web2:80');
    expect(applier.stats.failures).toBe(0);
    expect(readFileSync(reloads, 'utf8').trim().split('\n')).toHaveLength(3);
    await applier.stop();
  });
});
