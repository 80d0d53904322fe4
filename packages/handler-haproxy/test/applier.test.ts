/**
 * The Applier against a fake HAProxy runtime socket (records commands, answers like HAProxy 2.6) and
 * `touch` as the external reload command: which changes take the runtime API, which reload, and how
 * reloads are spaced. The config files are still checked by the real `haproxy -c`.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fakeContainer } from '@glue/core/contract';
import { silentLogger, type ContainerInspectInfo } from '@glue/core';
import { requireBinary } from '@glue/testkit';
import { Applier } from '../src/applier.js';
import { backendName, buildModel } from '../src/model.js';
import { DEFAULT_TEMPLATE, Renderer } from '../src/template.js';
import { type FakeRuntime, fakeRuntime } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'glue-applier-'));
const sock = join(dir, 'rt.sock');
const marker = join(dir, 'reloaded');
let runtime: FakeRuntime;
let commands: string[] = [];
beforeAll(async () => {
  runtime = await fakeRuntime(sock, 4000);
  commands = runtime.commands;
});
afterAll(async () => {
  await runtime.close();
  rmSync(dir, { recursive: true, force: true });
});

function world(reloadCommand = ['touch', marker], renderer = new Renderer()) {
  const containers = new Map<string, ContainerInspectInfo>();
  const applier = new Applier({
    mode: 'external',
    configFile: join(dir, 'haproxy.cfg'),
    haproxyBin: requireBinary('haproxy'),
    reloadCommand,
    runtimeSocket: sock,
    masterSocket: '',
    renderer,
    settings: { httpBind: '127.0.0.1:18084', tcpAddress: '*', runtimeSocket: sock },
    debounceMs: 5,
    maxDelayMs: 50,
    minReloadIntervalMs: 0,
    fastPath: true,
    deleteGraceMs: 0,
    checkTimeoutMs: 30_000,
    reloadTimeoutMs: 2000,
    logger: silentLogger(),
    compute: () => buildModel([...containers.values()]).model,
    alive: (id: string) => [...containers.values()].some((c) => c.Id === id && c.State?.Running === true),
    handlerName: 'test',
  });
  const put = (
    name: string,
    host: string,
    extra: Record<string, string> = {},
    ip = `172.17.0.${containers.size + 2}`,
  ) => {
    // The same name is the same container (its address or labels changed), as in the engine.
    const id = containers.get(name)?.Id;
    const c = fakeContainer({ name, ip, labels: { glue_http_80_host: host, ...extra }, ...(id ? { id } : {}) });
    containers.set(name, c);
    return c;
  };
  return { containers, applier, put };
}

describe('Applier: runtime API or reload', () => {
  it('structural changes reload; servers-only changes use the runtime API and still write the file', async () => {
    const { containers, applier, put } = world();
    put('a1', 'a.example.com');
    await applier.request();
    await applier.settled();
    expect(applier.stats.reloads).toBe(1);
    expect(existsSync(marker)).toBe(true);
    commands.length = 0;

    put('a2', 'a.example.com', { glue_http_80_weight: '7' });
    await applier.request();
    await applier.settled();
    expect(applier.stats.reloads).toBe(1);
    expect(commands).toEqual([
      // The backend's name from the model's own rule, not read back from the command under test.
      `add server ${backendName('a.example.com', '')}/a2:80 172.17.0.3:80 weight 7`,
      `enable server ${backendName('a.example.com', '')}/a2:80`,
    ]);
    expect(readFileSync(join(dir, 'haproxy.cfg'), 'utf8')).toContain('server a2:80 172.17.0.3:80 weight 7');

    commands.length = 0;
    put('a2', 'a.example.com', { glue_http_80_weight: '9' }, '172.17.0.30');
    await applier.request();
    await applier.settled();
    expect(commands.map((c) => c.replace(/_[0-9a-f]{8}\//, '/'))).toEqual([
      'set server http_a.example.com/a2:80 addr 172.17.0.30 port 80',
      'set server http_a.example.com/a2:80 weight 9',
    ]);

    // Paused: the container keeps its address, its server drains (maintenance, sessions left alone).
    commands.length = 0;
    const a2 = containers.get('a2') as ContainerInspectInfo;
    containers.set('a2', { ...a2, State: { ...a2.State, Paused: true } });
    await applier.request();
    await applier.settled();
    expect(commands.map((c) => c.replace(/_[0-9a-f]{8}\//, '/'))).toEqual([
      'set server http_a.example.com/a2:80 state maint',
      'del server http_a.example.com/a2:80',
    ]);

    // Gone (it stopped, then was removed): its address is free for another container, so its server
    // is retired first: maintenance and every session shut down, then deleted.
    put('a2', 'a.example.com', {}, '172.17.0.30');
    await applier.request();
    await applier.settled();
    commands.length = 0;
    containers.delete('a2');
    await applier.request();
    await applier.settled();
    expect(commands.map((c) => c.replace(/_[0-9a-f]{8}\//, '/'))).toEqual([
      'set server http_a.example.com/a2:80 state maint',
      'shutdown sessions server http_a.example.com/a2:80',
      'del server http_a.example.com/a2:80',
    ]);
    expect(applier.stats.reloads).toBe(1);

    // A new container with the name of a dead one takes over its server: retired, then pointed at
    // the new address and back in rotation.
    put('a3', 'a.example.com', {}, '172.17.0.40');
    await applier.request();
    await applier.settled();
    commands.length = 0;
    containers.delete('a3');
    put('a3', 'a.example.com', {}, '172.17.0.41');
    await applier.request();
    await applier.settled();
    expect(commands.map((c) => c.replace(/_[0-9a-f]{8}\//, '/'))).toEqual([
      'set server http_a.example.com/a3:80 state maint',
      'shutdown sessions server http_a.example.com/a3:80',
      'set server http_a.example.com/a3:80 addr 172.17.0.41 port 80',
      'set server http_a.example.com/a3:80 weight 100',
      'set server http_a.example.com/a3:80 state ready',
    ]);
    expect(applier.stats.reloads).toBe(1);

    put('b1', 'b.example.com');
    await applier.request();
    await applier.settled();
    expect(applier.stats.reloads).toBe(2);
    await applier.stop();
  });

  it('a servers-only change whose config fails haproxy -c sends nothing to the runtime API', async () => {
    // A user template that prints a keyword HAProxy refuses on servers of weight 7.
    const template = join(dir, 'weight7.cfg.njk');
    writeFileSync(
      template,
      DEFAULT_TEMPLATE.split('weight {{ s.weight }}').join(
        'weight {{ s.weight }}{% if s.weight == 7 %} no-such-keyword{% endif %}',
      ),
    );
    const { applier, put } = world(['touch', marker], new Renderer(template));
    put('g1', 'g.example.com');
    await applier.request();
    await applier.settled();
    const reloads = applier.stats.reloads;
    commands.length = 0;
    put('g2', 'g.example.com', { glue_http_80_weight: '7' });
    await expect(applier.request()).rejects.toThrow(/haproxy -c rejected the new config[\s\S]*no-such-keyword/);
    expect(commands).toEqual([]);
    expect(readFileSync(join(dir, 'haproxy.cfg'), 'utf8')).not.toContain('g2:80');
    expect(applier.stats.reloads).toBe(reloads);
    await applier.stop();
  });

  it('removes temp files that Glue processes which are gone left beside the config, keeps live ones', async () => {
    const dead = spawnSync('true').pid;
    const names = [
      `.haproxy.cfg.glue-${dead}-7.tmp`,
      `.haproxy.cfg.glue-${process.ppid}-2.tmp`,
      `.haproxy.cfg.glue-${process.pid}-900.tmp`,
      '.other.cfg.glue-1-1.tmp',
    ];
    for (const n of names) writeFileSync(join(dir, n), 'half-written');
    const { applier, put } = world();
    put('t1', 't.example.com');
    await applier.request();
    await applier.settled();
    const left = readdirSync(dir).filter((n) => n.endsWith('.tmp'));
    expect(left.sort()).toEqual(names.slice(1).sort());
    for (const n of names.slice(1)) rmSync(join(dir, n));
    await applier.stop();
  });

  it('a server HAProxy will not delete yet stays in maintenance and is deleted on a later apply', async () => {
    const { containers, applier, put } = world();
    put('c1', 'c.example.com');
    put('c2', 'c.example.com');
    await applier.request();
    await applier.settled();
    runtime.refuseDelete = true;
    containers.delete('c2');
    commands.length = 0;
    await applier.request();
    await applier.settled();
    expect(commands.filter((c) => c.startsWith('del server')).length).toBeGreaterThanOrEqual(1);
    runtime.refuseDelete = false;
    commands.length = 0;
    // No new event: the Applier comes back by itself (every 2 s) to delete it.
    const until = Date.now() + 5000;
    while (commands.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    await applier.settled();
    expect(applier.stats.skipped).toBeGreaterThanOrEqual(1);
    expect(commands.map((c) => c.replace(/_[0-9a-f]{8}\//, '/'))).toEqual(['del server http_c.example.com/c2:80']);
    await applier.stop();
  });

  it('a failed apply is retried by itself with backoff, without a new event', async () => {
    const okFile = join(dir, 'reload-works');
    const { applier, put } = world(['test', '-e', okFile]);
    put('r1', 'r.example.com');
    await expect(applier.request()).rejects.toThrow(/reload command "test -e .*reload-works" failed \(exit code 1\)/);
    writeFileSync(okFile, '');
    const until = Date.now() + 5000;
    while (applier.stats.reloads === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    expect(applier.stats.reloads).toBe(1);
    expect(applier.stats.failures).toBe(1);
    await applier.stop();
  });

  it('min-reload-interval: structural changes inside it wait and share one reload', async () => {
    const { applier, put } = world();
    (applier as unknown as { o: { minReloadIntervalMs: number } }).o.minReloadIntervalMs = 600;
    put('d1', 'd.example.com');
    await applier.request();
    await applier.settled();
    const first = statSync(marker).mtimeMs;
    const started = Date.now();
    put('e1', 'e.example.com');
    const p1 = applier.request();
    await new Promise((r) => setTimeout(r, 100));
    put('f1', 'f.example.com');
    await Promise.all([p1, applier.request()]);
    expect(applier.stats.reloads).toBe(2);
    expect(Date.now() - started).toBeGreaterThanOrEqual(400);
    expect(statSync(marker).mtimeMs).toBeGreaterThan(first);
    expect(readFileSync(join(dir, 'haproxy.cfg'), 'utf8')).toContain('f.example.com');
    await applier.stop();
  });
});
