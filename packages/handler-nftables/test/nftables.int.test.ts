/**
 * The kernel path, for real: a network namespace the test makes holds a private dockerd, Glue (the
 * built CLI with the nftables handler) and the clients; nft and conntrack run inside it. UDP echo
 * backends (the host's node, /usr mounted read-only) answer with their container name. The
 * host's own ruleset is compared before and after: it must not change.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  createNetns,
  type DockerEngine,
  type Netns,
  requireBinary,
  startDockerd,
  tempDir,
  type TestContainer,
  waitFor,
} from '@glue/testkit';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const GLUE_BIN = fileURLToPath(new URL('../../cli/dist/bin/glue.js', import.meta.url));
const CLIENT = fileURLToPath(new URL('./fixtures/udp-client.mjs', import.meta.url));
const BINDS = ['/usr:/usr:ro', '/usr/lib:/lib:ro', '/usr/lib64:/lib64:ro'];
const ECHO =
  "const s = require('node:dgram').createSocket('udp4'); s.on('message', (m, r) => s.send(process.env.GLUE_PAGE + ' ' + r.address + '\\n', r.port, r.address)); s.bind(53);";

let ns: Netns;
let engine: DockerEngine;
let tmp: Awaited<ReturnType<typeof tempDir>>;
let conf: string;
let hostRules: string;
let glue: { child: ChildProcess; log: () => string } | undefined;

interface Answers {
  answers: Record<string, number>;
  lost: number;
  /** Source addresses the backends saw. */
  seen?: string[];
}

async function hostRuleset(): Promise<string> {
  return (await execa('nft', ['list', 'ruleset'])).stdout;
}

function startGlueInNs(): { child: ChildProcess; log: () => string } {
  const [file, args] = ns.argv(process.execPath, [
    GLUE_BIN,
    '-w',
    '-c',
    conf,
    '--docker-url',
    engine.url,
    '--log-format',
    'json',
  ]);
  const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout?.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  return { child, log: () => log };
}

async function stopGlue(): Promise<void> {
  const g = glue;
  glue = undefined;
  if (!g || g.child.exitCode !== null) return;
  const exited = new Promise((r) => g.child.once('exit', r));
  g.child.kill('SIGTERM');
  await exited;
}

async function table(): Promise<string> {
  return ns.exec('nft', ['list', 'table', 'ip', 'glue'], { reject: false });
}

async function udp(port: number, count: number, base?: number): Promise<Answers> {
  const out = await ns.exec(process.execPath, [
    CLIENT,
    ns.address,
    String(port),
    String(count),
    ...(base ? [String(base)] : []),
  ]);
  return JSON.parse(out) as Answers;
}

/** The table as sets: every chain's rules and the map's elements, without handles or order. */
async function tableContent(): Promise<string[]> {
  const doc = JSON.parse(await ns.exec('nft', ['-j', 'list', 'table', 'ip', 'glue'])) as {
    nftables: Array<{ rule?: { chain: string; expr: unknown; comment?: string }; map?: { elem?: unknown[] } }>;
  };
  const out: string[] = [];
  for (const item of doc.nftables) {
    if (item.rule) out.push(`${item.rule.chain} ${JSON.stringify(item.rule.expr)} ${item.rule.comment ?? ''}`);
    for (const e of item.map?.elem ?? []) out.push(`elem ${JSON.stringify(e)}`);
  }
  return out.sort();
}

/** Conntrack entries whose replies come from `ip` (flows balanced to it). */
async function flowsTo(ip: string): Promise<number> {
  const out = await ns.exec('conntrack', ['-L', '-p', 'udp', '--reply-src', ip], { reject: false });
  return out.split('\n').filter((l) => l.trim() !== '').length;
}

/** A UDP echo backend on port 53 answering with its name (the host's node, /usr mounted read-only), once it answers. */
async function echo(name: string, labels: Record<string, string>): Promise<TestContainer> {
  const c = await engine.run({ name, labels, binds: BINDS, cmd: ['/usr/bin/node', '-e', ECHO] });
  await waitFor(
    async () => {
      const out = await ns.exec(process.execPath, [CLIENT, c.ip, '53', '1']);
      return (JSON.parse(out) as Answers).answers[name] === 1;
    },
    { timeoutMs: 15_000, what: `${name} answering on ${c.ip}:53` },
  );
  return c;
}

function writeIni(extra: string[] = []): void {
  writeFileSync(
    join(conf, 'l4.ini'),
    [
      '[handler]',
      'class=@glue/handler-nftables#NftablesHandler',
      'events=start,die,kill,stop,pause,unpause,health_status,destroy,none',
      '',
      '[params]',
      'protocols=udp,tcp',
      `listen=${ns.address}`,
      'reconcile-interval=1',
      ...extra,
      '',
    ].join('\n'),
  );
}

const inTable = (ip: string) => async () => (await table()).includes(`${ip}:`);
const notInTable = (ip: string) => async () => !(await table()).includes(`${ip}:`);

beforeAll(async () => {
  requireBinary('nft');
  requireBinary('conntrack');
  hostRules = await hostRuleset();
  ns = await createNetns('gluenft');
  [engine, tmp] = await Promise.all([startDockerd({ netns: ns.name }), tempDir('glue-nft-')]);
  conf = join(tmp.path, 'conf');
  mkdirSync(conf);
  writeIni();
  glue = startGlueInNs();
  await waitFor(async () => (await table()).includes('managed by Glue'), {
    timeoutMs: 20_000,
    what: `Glue's table in ${ns.name} (${glue.log()})`,
  });
});

afterAll(async () => {
  await stopGlue();
  await engine?.stop();
  await ns?.delete();
  await tmp?.cleanup();
});

describe('UDP in the kernel', () => {
  let a: TestContainer;
  let b: TestContainer;

  it('splits datagrams from many source ports by weight', async () => {
    [a, b] = await Promise.all([
      echo('udp-a', { glue_udp_53_port: '5353', glue_udp_53_weight: '200' }),
      echo('udp-b', { glue_udp_53_port: '5353', glue_udp_53_weight: '100' }),
    ]);
    await waitFor(async () => (await inTable(a.ip)()) && (await inTable(b.ip)()), {
      what: 'both endpoints in the table',
    });
    const r = await udp(5353, 300);
    expect(r.lost).toBe(0);
    // 2:1 expected (200 and 100 of 300); binomial sd ~8: a wide tolerance.
    expect(r.answers['udp-a']).toBeGreaterThan(160);
    expect(r.answers['udp-b']).toBeGreaterThan(60);
    expect(Object.keys(r.answers).sort()).toEqual(['udp-a', 'udp-b']);
  });

  it('a paused backend gets no new datagram and its conntrack entries are gone', async () => {
    // Docker flushes an endpoint's conntrack entries itself when its address goes (stop), not when
    // the container is paused, unhealthy or being stopped: then Glue's deletion is what counts.
    const first = await udp(5353, 200, 41000);
    expect(first.lost).toBe(0);
    expect(first.answers['udp-b']).toBeGreaterThan(0);
    expect(await flowsTo(b.ip)).toBeGreaterThan(0);
    const kept = await flowsTo(a.ip);
    await engine.cli(['pause', 'udp-b']);
    await waitFor(notInTable(b.ip), { what: 'udp-b out of the table' });
    await waitFor(async () => (await flowsTo(b.ip)) === 0, {
      timeoutMs: 5000,
      what: "udp-b's conntrack entries deleted",
    });
    // The other endpoint's flows are untouched by the table's replacement.
    expect(await flowsTo(a.ip)).toBe(kept);
    // The same source ports again: without the deletion, udp-b's old flows would blackhole them.
    expect(await udp(5353, 200, 41000)).toMatchObject({ answers: { 'udp-a': 200 }, lost: 0 });
    await engine.cli(['unpause', 'udp-b']);
    await waitFor(inTable(b.ip), { what: 'udp-b back in the table' });
  });

  it('a stopped backend gets no new datagram', async () => {
    await engine.cli(['stop', '-t', '1', 'udp-b']);
    await waitFor(notInTable(b.ip), { what: 'udp-b out of the table' });
    expect(await udp(5353, 100)).toMatchObject({ answers: { 'udp-a': 100 }, lost: 0 });
  });

  it('the table its patches made is the table a restarted Glue builds whole', async () => {
    const patched = await tableContent();
    await stopGlue();
    glue = startGlueInNs();
    await waitFor(() => /"kind":"full"|table ip glue: \d+ service/.test(glue?.log() ?? ''), {
      timeoutMs: 20_000,
      what: 'the whole table written again',
    });
    expect(await tableContent()).toEqual(patched);
  });

  it('a restarted Glue keeps the table (traffic flows while it is down) and reconciles it', async () => {
    await stopGlue();
    expect(await table()).toContain(`${a.ip}:53`);
    expect((await udp(5353, 20)).answers).toEqual({ 'udp-a': 20 });
    // While Glue is down: udp-a is paused (its flows stay: Docker does not flush them), udp-c comes.
    expect(await flowsTo(a.ip)).toBeGreaterThan(0);
    const c = await echo('udp-c', { glue_udp_53_port: '5353' });
    await engine.cli(['pause', 'udp-a']);
    expect(await table()).toContain(`${a.ip}:53`);
    glue = startGlueInNs();
    await waitFor(async () => (await inTable(c.ip)()) && (await notInTable(a.ip)()), {
      timeoutMs: 20_000,
      what: 'the restarted Glue reconciles',
    });
    expect(glue.log()).toMatch(/found table ip glue with 1 service\(s\): kept until the first run reconciles it/);
    expect((await udp(5353, 30)).answers).toEqual({ 'udp-c': 30 });
    expect(await flowsTo(a.ip)).toBe(0);
  });

  it('refuses injected labels with a line naming container, label and value; other services keep their rules', async () => {
    await echo('udp-evil', { glue_udp_53_port: '53 ; flush ruleset', glue_udp_54_port: '5454 } ; drop' });
    const good = await echo('udp-good', { glue_udp_53_port: '5454' });
    await waitFor(inTable(good.ip), { what: 'udp-good in the table' });
    const log = glue?.log() ?? '';
    expect(log).toContain(
      'container udp-evil: label glue_udp_53_port=\\"53 ; flush ruleset\\" is not a port (1-65535): refused',
    );
    expect(log).toContain('glue_udp_54_port=\\"5454 } ; drop\\"');
    expect(await table()).not.toMatch(/flush|udp-evil/);
    expect((await udp(5353, 10)).answers).toEqual({ 'udp-c': 10 });
    expect((await udp(5454, 10)).answers).toEqual({ 'udp-good': 10 });
  });
});

/** An HAProxy INI that keeps its files in `dir` and, by default, balances glue_tcp_* labels too. */
const lbIni = (dir: string): string =>
  `[handler]\nclass=@glue/handler-haproxy#HAProxyHandler\nevents=none\n\n[params]\nmode=file\nconfig-file=${join(dir, 'haproxy.cfg')}\n`;

describe('masquerade', () => {
  it("masquerade=yes, through a SIGHUP reload: backends see this host's address on their network, not the client's", async () => {
    expect((await udp(5353, 5)).seen).toEqual([ns.address]);
    writeIni(['masquerade=yes']);
    glue?.child.kill('SIGHUP');
    await waitFor(async () => (await table()).includes('masquerade'), {
      timeoutMs: 15_000,
      what: 'the masquerade rule',
    });
    const r = await udp(5353, 20);
    expect(r.lost).toBe(0);
    expect(r.seen).toEqual([engine.subnet.replace(/\.0\/24$/, '.1')]);
  });
});

describe('SIGHUP', () => {
  it('a new INI that would balance glue_tcp_* labels too is refused; the table stays as it was', async () => {
    const before = await tableContent();
    writeFileSync(join(conf, 'lb.ini'), lbIni(tmp.path));
    glue?.child.kill('SIGHUP');
    await waitFor(() => /reload refused.*claimed by both l4\.ini/.test(glue?.log() ?? ''), {
      timeoutMs: 15_000,
      what: 'the reload refused',
    });
    expect(glue?.child.exitCode).toBeNull();
    expect(await tableContent()).toEqual(before);
    rmSync(join(conf, 'lb.ini'));
  });
});

describe('TCP in the kernel (protocols=udp,tcp)', () => {
  it('balances a TCP port to the container, and stops when it stops', async () => {
    const web = await engine.run({ name: 'tcp-web', labels: { glue_tcp_80_port: '8080' } });
    await waitFor(inTable(web.ip), { what: 'tcp-web in the table' });
    const fetchText = `fetch('http://${ns.address}:8080/', { signal: AbortSignal.timeout(2000) }).then((r) => r.text()).then((t) => process.stdout.write(t), () => undefined)`;
    const get = () => ns.exec(process.execPath, ['-e', fetchText], { reject: false });
    // busybox httpd may take a moment to listen after the start event.
    await waitFor(async () => (await get()).trim() === 'tcp-web', { timeoutMs: 5000, what: 'tcp-web over TCP' });
    await engine.cli(['stop', '-t', '1', 'tcp-web']);
    await waitFor(notInTable(web.ip), { what: 'tcp-web out of the table' });
    expect((await get()).trim()).toBe('');
  });
});

describe('drift', () => {
  it('a table flushed behind its back is written whole again within reconcile-interval', async () => {
    const before = await tableContent();
    await ns.exec('nft', ['flush', 'ruleset']);
    expect(await table()).toBe('');
    await waitFor(async () => (await table()).includes('managed by Glue'), {
      timeoutMs: 10_000,
      what: 'the table back',
    });
    expect(await tableContent()).toEqual(before);
    expect(glue?.log()).toMatch(/was deleted behind Glue's back: writing it whole again/);
    expect((await udp(5353, 10)).answers).toEqual({ 'udp-c': 10 });
  });
});

describe('around it', () => {
  it('HAProxy and nftables both claiming glue_tcp_* labels is refused at load, naming both', async () => {
    const dir = join(tmp.path, 'clash');
    mkdirSync(dir);
    writeFileSync(join(dir, 'lb.ini'), lbIni(dir));
    writeFileSync(
      join(dir, 'l4.ini'),
      '[handler]\nclass=@glue/handler-nftables#NftablesHandler\nevents=none\n\n[params]\nprotocols=udp,tcp\n',
    );
    const r = await execa(process.execPath, [GLUE_BIN, '-1', '-c', dir, '--docker-url', engine.url], { reject: false });
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(
      /lb\.ini \[params\] tcp-ports: glue_tcp_<port>_port labels are claimed by both l4\.ini \(\[params\] protocols\) and lb\.ini \(\[params\] tcp-ports\)/,
    );
  });

  it("leaves the host's ruleset as it was", async () => {
    expect(await hostRuleset()).toBe(hostRules);
  });
});
