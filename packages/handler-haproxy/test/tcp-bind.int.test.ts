/**
 * A TCP frontend whose port another program holds: `haproxy -c` passes (it does not bind) and the
 * reload fails. A real HAProxy in managed mode, with the bind probe off so HAProxy's own
 * "cannot bind socket" alert is what leaves the service out: the other routes are applied, later
 * server-only changes still go through, and the port comes back once it is free.
 */
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureLogger, fakeContainer } from '@glue/core/contract';
import type { ContainerInspectInfo } from '@glue/core';
import { freePort, httpGet, requireBinary, tempDir, waitFor } from '@glue/testkit';
import { Applier } from '../src/applier.js';
import { buildModel } from '../src/model.js';
import { Renderer } from '../src/template.js';

let dir: { path: string; cleanup: () => Promise<void> };
let httpPort: number;
let backendPort: number;
let busyPort: number;
let backend: HttpServer;
let occupier: Server | undefined;
let applier: Applier | undefined;
const { logger, lines } = captureLogger();
const containers = new Map<string, ContainerInspectInfo>();

const listen = (server: Server | HttpServer, port: number): Promise<void> =>
  new Promise((r) => server.listen(port, '127.0.0.1', () => r()));

beforeAll(async () => {
  dir = await tempDir('glue-tcp-bind-');
  httpPort = await freePort();
  backendPort = await freePort();
  busyPort = await freePort();
  backend = createHttpServer((req, res) => res.end(`backend ${req.headers.host ?? ''}`));
  await listen(backend, backendPort);
  occupier = createServer((c) => c.end('not haproxy\n'));
  await listen(occupier, busyPort);
});
afterAll(async () => {
  await applier?.stop();
  await new Promise((r) => backend?.close(r));
  if (occupier?.listening) await new Promise((r) => occupier?.close(r));
  await dir?.cleanup();
});

const put = (name: string, labels: Record<string, string>): void => {
  containers.set(name, fakeContainer({ name, ip: '127.0.0.1', labels }));
};

describe('a TCP port in use on the host', () => {
  it("fails the reload; only that TCP service is left out, with a log line naming container, label, value and HAProxy's words", async () => {
    const runtimeSocket = join(dir.path, 'rt.sock');
    applier = new Applier({
      mode: 'managed',
      configFile: join(dir.path, 'haproxy.cfg'),
      haproxyBin: requireBinary('haproxy'),
      reloadCommand: [],
      runtimeSocket,
      masterSocket: join(dir.path, 'master.sock'),
      renderer: new Renderer(),
      settings: { httpBind: `127.0.0.1:${httpPort}`, tcpAddress: '127.0.0.1', runtimeSocket },
      debounceMs: 5,
      maxDelayMs: 50,
      minReloadIntervalMs: 0,
      fastPath: true,
      hostMap: join(dir.path, 'haproxy.hosts.map'),
      spareBackends: 4,
      checkTimeoutMs: 30_000,
      reloadTimeoutMs: 10_000,
      logger,
      compute: () => buildModel([...containers.values()]).model,
      alive: (id: string) => [...containers.values()].some((c) => c.Id === id && c.State?.Running === true),
      handlerName: 'test',
      bindProbe: false,
      tcpRetryMs: 300,
    });
    await applier.start();
    put('web', { [`glue_http_${backendPort}_host`]: 'web.example.com' });
    await applier.request();
    expect((await httpGet(`http://127.0.0.1:${httpPort}/`, { host: 'web.example.com' })).status).toBe(200);

    // One structural apply: a TCP service on the taken port and a prefix route.
    put('tcp-busy', { [`glue_tcp_${backendPort}_port`]: String(busyPort) });
    put('docs', { [`glue_http_${backendPort}_host`]: 'web.example.com', [`glue_http_${backendPort}_prefix`]: 'docs' });
    await applier.request();
    expect(applier.excludedTcpPorts).toEqual([busyPort]);
    expect((await httpGet(`http://127.0.0.1:${httpPort}/docs/x`, { host: 'web.example.com' })).status).toBe(200);
    const line = lines.find((l) => l.label === `glue_tcp_${backendPort}_port`);
    expect(line?.value).toBe(String(busyPort));
    expect(line?.msg).toContain(`container tcp-busy label glue_tcp_${backendPort}_port=${busyPort}`);
    expect(line?.msg).toMatch(/cannot bind socket \(Address already in use\)/);
  });

  it('later changes are applied (not retried against the same failing reload)', async () => {
    const a = applier as Applier;
    put('other', { [`glue_http_${backendPort}_host`]: 'other.example.com' });
    await a.request();
    expect((await httpGet(`http://127.0.0.1:${httpPort}/`, { host: 'other.example.com' })).status).toBe(200);
    expect(a.stats.failures).toBe(0);
  });

  it('the service comes back by itself once the port is free', async () => {
    await new Promise((r) => occupier?.close(r));
    await waitFor(
      async () =>
        (await httpGet(`http://127.0.0.1:${busyPort}/`, { host: 'tcp' }).catch(() => undefined))?.body.startsWith(
          'backend',
        ),
      { timeoutMs: 15_000, what: 'the TCP frontend on the freed port' },
    );
    expect((applier as Applier).excludedTcpPorts).toEqual([]);
    expect(lines.some((l) => l.msg === `TCP frontend port ${busyPort} can be bound again: taking it back in`)).toBe(
      true,
    );
  });
});
