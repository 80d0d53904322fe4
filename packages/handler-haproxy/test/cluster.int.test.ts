/**
 * Cluster mode end to end: two private dockerd instances (own sockets, bridges and --bip ranges; the
 * same `docker info` ID, as every engine on this machine), a Glue agent with the etcd publisher on
 * each (one in `address=container` mode, one in `address=published` mode), one real etcd, and one
 * `glue-balancer --source etcd` with a managed HAProxy on loopback. Every component is real; the
 * agents and the balancer are their own processes, so they can be killed.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGlue, IniDocument } from '@glue/core';
import { HAProxyHandler } from '../src/handler.js';
import {
  type DockerEngine,
  type EtcdServer,
  freePort,
  httpGet,
  httpsGet,
  isAlive,
  pidsMentioning,
  requireBinary,
  startDockerd,
  startEtcd,
  startTcpProxy,
  type TcpProxy,
  steadyClient,
  stopPid,
  tempDir,
  waitFor,
} from '@glue/testkit';

const BALANCER_BIN = fileURLToPath(new URL('../dist/bin/glue-balancer.js', import.meta.url));
// The publisher's own agent fixture (a Glue daemon with the publisher only, as a process).
const AGENT = fileURLToPath(new URL('../../publisher-etcd/test/fixtures/agent.mjs', import.meta.url));
const TTL = 4;

let east: DockerEngine;
let west: DockerEngine;
let etcd: EtcdServer;
let dir: { path: string; cleanup: () => Promise<void> };
let port: number;
let httpsPort: number;
let balancer: ChildProcess;
let log = '';
const agents = new Map<string, ChildProcess>();

/** The bridge address of an engine: where a port it publishes on its own address is reached. */
const bridgeIp = (engine: DockerEngine): string => engine.subnet.replace(/\.0\/24$/, '.1');

function startAgent(host: 'east' | 'west'): void {
  const params =
    host === 'east'
      ? { endpoints: etcd.endpoint, 'host-id': 'east', ttl: String(TTL), address: 'container' }
      : {
          endpoints: etcd.endpoint,
          'host-id': 'west',
          ttl: String(TTL),
          address: 'published',
          'advertise-address': '127.0.0.1',
        };
  const engine = host === 'east' ? east : west;
  const child = spawn(process.execPath, [AGENT, engine.url, JSON.stringify(params)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  child.on('exit', (code, signal) => {
    if (code !== 0 && signal !== 'SIGKILL' && signal !== 'SIGTERM')
      console.error(`agent ${host} exited ${code}: ${err}`);
  });
  agents.set(host, child);
}

async function kill9(host: string): Promise<void> {
  const child = agents.get(host)!;
  const exited = new Promise((r) => child.once('exit', r));
  await stopPid(child.pid!, 'SIGKILL', 2000);
  await exited;
}

const get = async (host: string, at = port): Promise<string> => {
  try {
    const r = await httpGet(`http://127.0.0.1:${at}/`, { host, timeoutMs: 3000 });
    return `${r.status}${r.status === 200 ? ` ${r.body.trim()}` : ''}`;
  } catch (err) {
    return `error ${(err as Error).message}`;
  }
};

/**
 * Waits until `host` answers `want` ("200 page" or "503"); returns how long after the call the first
 * request that got that answer was sent (a request sent earlier may still be waiting on a dead address).
 */
async function answers(host: string, want: string, timeoutMs = 20_000, at = port, logOf = () => log): Promise<number> {
  const started = Date.now();
  let last = '';
  let sentAt = started;
  try {
    await waitFor(
      async () => {
        sentAt = Date.now();
        return (last = await get(host, at)) === want;
      },
      { timeoutMs, intervalMs: 25, what: `${host} -> ${want}` },
    );
  } catch (err) {
    throw new Error(
      `${(err as Error).message} (last answer: ${last})\n--- glue-balancer, last lines ---\n${logOf().split('\n').slice(-30).join('\n')}`,
    );
  }
  return sentAt - started;
}

/** Web containers: `east` ones on the east engine's bridge (container address), `west` ones published on west's bridge address. */
async function web(host: 'east' | 'west', name: string, vhosts: string): Promise<string> {
  const labels = { glue_http_80_host: vhosts };
  if (host === 'east') return (await east.run({ name, labels })).id;
  return (await west.run({ name, labels, publish: [{ port: 80, hostIp: bridgeIp(west) }] })).id;
}

/** glue-balancer --source etcd with a managed HAProxy on `at`, its files in `files`; `onLog` gets its stderr. */
function spawnBalancer(
  endpoint: string,
  files: string,
  at: number,
  onLog: (text: string) => void,
  extra: readonly string[] = [],
): ChildProcess {
  const child = spawn(
    process.execPath,
    [
      BALANCER_BIN,
      '-w',
      '--source',
      'etcd',
      '--etcd-endpoints',
      endpoint,
      '--mode',
      'managed',
      '--config-file',
      join(files, 'haproxy.cfg'),
      '--http-bind',
      `127.0.0.1:${at}`,
      '--spare-backends',
      '8',
      '--log-level',
      'debug',
      '--log-format',
      'json',
      ...extra,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  child.stderr?.on('data', (d: Buffer) => onLog(d.toString()));
  return child;
}

beforeAll(async () => {
  requireBinary('haproxy');
  [east, west, etcd] = await Promise.all([startDockerd(), startDockerd(), startEtcd()]);
  dir = await tempDir('glue-lb-cluster-');
  port = await freePort();
  httpsPort = await freePort();
  startAgent('east');
  startAgent('west');
  balancer = spawnBalancer(etcd.endpoint, dir.path, port, (t) => (log += t), [
    '--https-bind',
    `127.0.0.1:${httpsPort}`,
  ]);
  await waitFor(() => log.includes('glue-balancer watching the etcd index') || balancer.exitCode !== null, {
    timeoutMs: 30_000,
    what: 'glue-balancer to start',
  });
  if (balancer.exitCode !== null) throw new Error(`glue-balancer exited: ${log}`);
});

let second: ChildProcess | undefined;
let proxy: TcpProxy | undefined;

afterAll(async () => {
  if (second?.pid) await stopPid(second.pid, 'SIGTERM', 15_000);
  await proxy?.close();
  if (process.env.GLUE_CLUSTER_LOG) (await import('node:fs')).writeFileSync(process.env.GLUE_CLUSTER_LOG, log);
  if (balancer?.pid) await stopPid(balancer.pid, 'SIGTERM', 15_000);
  for (const a of agents.values()) if (a.pid && isAlive(a.pid)) await stopPid(a.pid, 'SIGKILL', 2000);
  if (dir) for (const pid of pidsMentioning(dir.path)) await stopPid(pid, 'SIGKILL', 2000);
  await Promise.allSettled([east?.stop(), west?.stop(), etcd?.stop()]);
  await dir?.cleanup();
});

describe('glue-balancer --source etcd', () => {
  it('routes Host headers to containers on both engines, in both address modes', async () => {
    await web('east', 'east1', 'east.example.com,shared.example.com');
    await web('west', 'west1', 'west.example.com,shared.example.com');
    await answers('east.example.com', '200 east1');
    await answers('west.example.com', '200 west1');
    const seen = new Set<string>();
    for (let i = 0; i < 10; i++) seen.add(await get('shared.example.com'));
    expect([...seen].sort()).toEqual(['200 east1', '200 west1']);
    // Servers are named by host, so two engines' containers never share a name; west's points at
    // the port Docker published on west's bridge address, east's at the container itself.
    // (The file follows the runtime API in the background.)
    const cfg = await waitFor(
      () => {
        const text = readFileSync(join(dir.path, 'haproxy.cfg'), 'utf8');
        return text.includes('west:west1:80') && text.includes('east:east1:80') ? text : undefined;
      },
      { timeoutMs: 10_000, what: 'haproxy.cfg to list both servers' },
    );
    expect(cfg).toMatch(/server west:west1:80 172\.31\.\d+\.1:\d+ /);
    expect(cfg).not.toMatch(/server west:west1:80 172\.31\.\d+\.1:80 /);
  });

  it('the same through an INI file: HAProxyHandler with source=etcd, under glue -1', async () => {
    const configFile = join(dir.path, 'ini', 'haproxy.cfg');
    const ini = new IniDocument(
      'lb.ini',
      [
        '[handler]',
        'class=@glue/handler-haproxy#HAProxyHandler',
        'events=none',
        '[params]',
        'source=etcd',
        `etcd-endpoints=${etcd.endpoint}`,
        'mode=file',
        `config-file=${configFile}`,
        'http-bind=127.0.0.1:1',
        '',
      ].join('\n'),
    );
    const glue = createGlue({
      dockerUrl: east.url,
      handlers: [
        {
          name: 'lb.ini',
          events: ['none'],
          handler: (agent) => new HAProxyHandler(agent, join(dir.path, 'lb.ini'), ini),
        },
      ],
    });
    const result = await glue.runOnce();
    expect(result.failed).toBe(0);
    // Both hosts' servers, from etcd, although this Glue only watches the east engine.
    const text = readFileSync(configFile, 'utf8');
    expect(text).toMatch(/server east:east1:80 /);
    expect(text).toMatch(/server west:west1:80 /);
  });

  it('HTTPS labels travel through the index: the balancer serves the host over HTTPS and redirects plain HTTP', async () => {
    await east.run({
      name: 'easttls',
      labels: { glue_http_80_host: 'secure.example.com', glue_http_80_redirect_https: 'yes' },
    });
    await waitFor(
      async () =>
        (
          await httpsGet(`https://127.0.0.1:${httpsPort}/`, { servername: 'secure.example.com', insecure: true }).catch(
            () => undefined,
          )
        )?.body.trim() === 'easttls',
      { timeoutMs: 20_000, what: 'secure.example.com over HTTPS through the etcd index' },
    );
    const plain = await httpGet(`http://127.0.0.1:${port}/a?b=1`, { host: 'secure.example.com' });
    expect(plain.status).toBe(301);
    expect(plain.headers.location).toBe(`https://secure.example.com:${httpsPort}/a?b=1`);
    // A plain host of the same index is not served over HTTPS.
    const other = await httpsGet(`https://127.0.0.1:${httpsPort}/`, { servername: 'east.example.com', insecure: true });
    expect(other.status).toBe(503);
    await east.cli(['rm', '-f', 'easttls']);
  });

  it('a container started or stopped on either engine is routable / gone within 1 s, without a reload', async () => {
    const reloadsBefore = (log.match(/"msg":"HAProxy reloaded/g) ?? []).length;
    const timings: Record<string, number> = {};
    for (const host of ['east', 'west'] as const) {
      const name = `${host}-quick`;
      const id = await web(host, name, `${name}.example.com`);
      timings[`${host} start`] = await answers(`${name}.example.com`, `200 ${name}`, 10_000);
      const engine = host === 'east' ? east : west;
      const killAt = Date.now();
      await engine.cli(['kill', id]);
      const killMs = Date.now() - killAt;
      timings[`${host} stop`] = killMs + (await answers(`${name}.example.com`, '503', 10_000));
    }
    console.log(`cluster: event -> routable/gone through etcd (ms): ${JSON.stringify(timings)}`);
    for (const [what, ms] of Object.entries(timings)) expect(ms, what).toBeLessThanOrEqual(1000);
    // A container that stopped while its agent publishes is retired at once (misroute protection).
    await waitFor(() => /container stopped: \S+\/east:east-quick:80 in maintenance, sessions shut down/.test(log), {
      timeoutMs: 5000,
      what: 'east-quick retired',
    });
    expect((log.match(/"msg":"HAProxy reloaded/g) ?? []).length).toBe(reloadsBefore);
  });

  it('an injected index entry is refused with a line naming its key; the other routes keep serving', async () => {
    const id = 'f'.repeat(64);
    const key = `/glue/http/evil.example.com/east/${id}/80`;
    const value = JSON.stringify({
      v: 1,
      host: 'east',
      id,
      name: 'evil',
      vhost: 'evil.example.com',
      port: 80,
      prefix: 'x\n    server injected 10.9.9.9:80',
      stripPrefix: false,
      weight: 100,
      addresses: {},
      endpoint: { address: '10.9.9.9', port: 80 },
      health: null,
      container: `/glue/hosts/east/containers/${id}`,
    });
    await etcd.ctl(['put', key, value]);
    const weight = `/glue/http/heavy.example.com/west/${id}/80`;
    await etcd.ctl([
      'put',
      weight,
      value
        .replace('"weight":100', '"weight":300')
        .replaceAll('evil.example.com', 'heavy.example.com')
        .replace('"host":"east"', '"host":"west"'),
    ]);
    await waitFor(() => log.includes(`skipped ${key}`) && log.includes(`skipped ${weight}`), {
      timeoutMs: 10_000,
      what: 'the injected keys to be refused in the log',
    });
    expect(readFileSync(join(dir.path, 'haproxy.cfg'), 'utf8')).not.toMatch(/injected|10\.9\.9\.9|heavy/);
    expect(await get('evil.example.com')).toBe('503');
    await answers('east.example.com', '200 east1');
    await etcd.ctl(['del', key]);
    await etcd.ctl(['del', weight]);
  });

  it("kill -9 of one agent: its servers leave within TTL + 2 s; the other engine's serve on without one failed request", async () => {
    const client = steadyClient(`http://127.0.0.1:${port}/`, 'west.example.com');
    const shared = steadyClient(`http://127.0.0.1:${port}/`, 'shared.example.com');
    await kill9('east');
    const killedAt = Date.now();
    await answers('east.example.com', '503', (TTL + 4) * 1000);
    const goneMs = Date.now() - killedAt;
    const r = await client.stop();
    const s = await shared.stop();
    console.log(
      `cluster: east's servers gone ${goneMs} ms after kill -9 (TTL ${TTL} s); west: ${r.ok} ok, shared: ${s.ok} ok`,
    );
    expect(goneMs).toBeLessThanOrEqual((TTL + 2) * 1000);
    expect(r).toMatchObject({ failed: 0 });
    expect(s).toMatchObject({ failed: 0 });
    expect(r.ok).toBeGreaterThan(10);
    // Its keys went with its owner key: a host cut off, whose containers may still serve: drained, not shut down.
    expect(log).toMatch(/host east is gone from the index with its owner key/);
    expect(log).not.toMatch(/container stopped: \S+\/east:east1:80/);
    // The agent comes back: east's containers are published again and routable.
    startAgent('east');
    await answers('east.example.com', '200 east1');
  });

  it('an etcd restart while containers change on both engines: HAProxy serves on meanwhile, and the end state is exact', async () => {
    await etcd.kill();
    // Unreachable etcd never empties HAProxy.
    expect(await get('west.example.com')).toBe('200 west1');
    const e2 = await web('east', 'east2', 'east2.example.com');
    const w2 = await web('west', 'west2', 'west2.example.com');
    await east.cli(['kill', 'east1']);
    await new Promise((r) => setTimeout(r, 1000));
    expect(await get('west.example.com')).toBe('200 west1');
    await etcd.restart();
    await answers('east2.example.com', '200 east2', 30_000);
    await answers('west2.example.com', '200 west2', 30_000);
    await answers('east.example.com', '503', 30_000);
    await answers('west.example.com', '200 west1');
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) seen.add(await get('shared.example.com'));
    expect([...seen]).toEqual(['200 west1']);
    expect(e2).toBeTruthy();
    expect(w2).toBeTruthy();
  });

  it('a balancer cut off from etcd serves on; a host whose lease expired meanwhile and a compacted revision are dealt with once it is back', async () => {
    proxy = await startTcpProxy(etcd.endpoint);
    const at = await freePort();
    let log2 = '';
    second = spawnBalancer(proxy.endpoint, join(dir.path, 'second'), at, (t) => (log2 += t));
    const logOf = (): string => log2;
    await answers('west.example.com', '200 west1', 30_000, at, logOf);
    await answers('east2.example.com', '200 east2', 30_000, at, logOf);

    proxy.cut();
    // East's agent dies; its lease expires in etcd while this balancer cannot see it.
    await kill9('east');
    await waitFor(async () => Object.keys(await etcd.keys('/glue/hosts/east/')).length === 0, {
      timeoutMs: (TTL + 6) * 1000,
      what: "east's lease to expire",
    });
    const w3 = await web('west', 'west3', 'west3.example.com');
    await answers('west3.example.com', '200 west3', 10_000); // the main balancer sees it at once
    // etcd compacts past what the cut-off watch has seen: it must list again.
    const status = JSON.parse(await etcd.ctl(['endpoint', 'status', '-w', 'json'])) as Array<{
      Status: { header: { revision: number } };
    }>;
    await etcd.ctl(['compact', String(status[0]!.Status.header.revision)]);
    // Cut off, it keeps its last routes: east2 still answers (its container runs), nothing emptied.
    expect(await get('east2.example.com', at)).toBe('200 east2');
    expect(await get('west.example.com', at)).toBe('200 west1');

    proxy.restore();
    await answers('west3.example.com', '200 west3', 40_000, at, logOf);
    await answers('east2.example.com', '503', 40_000, at, logOf);
    await answers('west.example.com', '200 west1', 5000, at, logOf);
    if (process.env.GLUE_CLUSTER_LOG)
      (await import('node:fs')).writeFileSync(`${process.env.GLUE_CLUSTER_LOG}.second`, log2);
    expect(log2).toMatch(/etcd watch lost/);
    // The compacted revision: the watch was cancelled, the reader listed again and applied the difference.
    expect(log2).toMatch(/cancelled by etcd .*; listing again and watching on/);
    expect(log2).toMatch(/host east is gone from the index with its owner key/);
    expect(w3).toBeTruthy();
  });
});
