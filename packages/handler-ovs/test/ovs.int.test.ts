import { writeFileSync } from 'node:fs';
import { execa } from 'execa';
import { join } from 'node:path';
import { createGlue, engineIdentity, type Glue, type HandlerRun, IniDocument } from '@glue/core';
import {
  type DockerEngine,
  type OvsSwitch,
  requireBinary,
  startDockerd,
  startOvs,
  tempDir,
  waitFor,
} from '@glue/testkit';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { OVSHandler } from '../src/index.js';

// A real dockerd and a private Open vSwitch (userspace datapath) per file; everything is removed in afterAll.
let engine: DockerEngine;
let ovs: OvsSwitch;
let bridge: string;
let work: Awaited<ReturnType<typeof tempDir>>;
let engineId: string;
const glues: Glue[] = [];
const runs: HandlerRun[] = [];

beforeAll(async () => {
  for (const bin of ['ovs-vsctl', 'ovsdb-server', 'ovs-vswitchd', 'ovsdb-tool', 'ethtool', 'nsenter', 'ip'])
    requireBinary(bin);
  work = await tempDir('glue-ovs-int-');
  engine = await startDockerd();
  ovs = await startOvs();
  bridge = ovs.uniqueName('govt');
  await ovs.addBridge(bridge);
  // What Glue's agent reports as this engine's id (the docker info ID alone is shared by engines).
  const info = (await engine.docker.info()) as { ID: string; DockerRootDir: string; Name: string };
  engineId = engineIdentity(info.ID, info.DockerRootDir, info.Name).id;
});

afterAll(async () => {
  for (const g of glues) await g.stop().catch(() => undefined);
  await engine?.stop().catch(() => undefined);
  await ovs?.stop();
  await work?.cleanup();
});

function ini(params: Record<string, string>): IniDocument {
  const file = join(work.path, 'ovs.ini');
  const text = [
    '[handler]',
    'class=@glue/handler-ovs#OVSHandler',
    'events=start,die,destroy,none',
    '',
    '[params]',
    ...Object.entries(params).map(([k, v]) => `${k}=${v}`),
    '',
  ].join('\n');
  writeFileSync(file, text);
  return new IniDocument(file, text);
}

async function startGlue(on: DockerEngine = engine, params: Record<string, string> = {}): Promise<Glue> {
  const doc = ini({ 'ovs-bridge': bridge, 'ovs-db': ovs.db, ...params });
  const glue = createGlue({
    dockerUrl: on.url,
    handlers: [
      {
        name: 'ovs.ini',
        events: ['start', 'die', 'destroy', 'none'],
        handler: (agent) => new OVSHandler(agent, doc.path, doc),
      },
    ],
  });
  glue.on('handler', (r) => runs.push(r));
  glues.push(glue);
  await glue.start();
  return glue;
}

async function portsOf(containerId: string): Promise<string[]> {
  return (await ovs.ports(bridge)).filter((p) => p.externalIds.container_id === containerId).map((p) => p.name);
}

const ip = async (args: string[]): Promise<string> => (await execa('ip', args)).stdout;
/** `ip link show dev NAME` succeeds: the link is on the host. */
const linkExists = async (name: string): Promise<boolean> =>
  (await execa('ip', ['link', 'show', 'dev', name], { reject: false })).exitCode === 0;

// busybox-static's `wget -T` crashes (SIGSEGV): bound it with busybox `timeout` instead.
const wget = (from: string, ip: string): Promise<string> =>
  engine.cli(['exec', from, 'timeout', '10', 'wget', '-q', '-O', '-', `http://${ip}/`]);

describe('OVSHandler against a real Open vSwitch and dockerd', () => {
  it('plugs two --network none containers into the bridge; they reach each other over HTTP; ports go when they stop', async () => {
    const glue = await startGlue();
    onTestFinished(() => glue.stop());
    const a = await engine.run({ network: 'none', labels: { glue_ovs_ip: '10.203.0.2/24', glue_ovs_vlan: '20' } });
    const b = await engine.run({
      network: 'none',
      labels: {
        glue_ovs_bridge: bridge,
        glue_ovs_ip: '10.203.0.3/24',
        glue_ovs_vlan: '20',
        glue_ovs_mtu: '1400',
        glue_ovs_mac: '02:00:0a:cb:00:03',
        glue_ovs_gateway: '10.203.0.1',
      },
    });
    await waitFor(async () => (await portsOf(a.id)).length === 1 && (await portsOf(b.id)).length === 1, {
      timeoutMs: 20_000,
      what: 'both ports on the bridge',
    });
    // The port row is visible as soon as ovs-vsctl commits; ofport comes when ovs-vswitchd has caught up,
    // which the handler waits for: wait for both start runs before reading the row.
    await waitFor(() => [a.id, b.id].every((id) => runs.some((r) => r.event === 'start' && r.containerId === id)), {
      timeoutMs: 20_000,
      what: 'both start runs',
    });

    const ports = await ovs.ports(bridge);
    const pa = ports.find((p) => p.externalIds.container_id === a.id)!;
    expect(pa.externalIds).toMatchObject({ container_iface: 'eth0', glue_engine: engineId });
    expect(pa.tag).toBe(20);
    expect(pa.error).toBe('');
    expect(pa.ofport).toBeGreaterThan(0);

    // What the container sees: its eth0 with the address and MTU asked for.
    const addr = await engine.cli(['exec', b.name, 'ip', '-o', 'addr', 'show', 'dev', 'eth0']);
    expect(addr).toContain('10.203.0.3/24');
    expect(await engine.cli(['exec', b.name, 'cat', '/sys/class/net/eth0/mtu'])).toBe('1400');
    expect(await engine.cli(['exec', b.name, 'cat', '/sys/class/net/eth0/address'])).toBe('02:00:0a:cb:00:03');
    expect(await engine.cli(['exec', b.name, 'ip', 'route', 'show', 'default'])).toMatch(
      /^default via 10\.203\.0\.1 dev eth0\b/,
    );
    // netdev bridge, tx-offload=auto: TX checksumming off inside both containers (ethtool from the host, in their namespace).
    for (const c of [a, b]) {
      const pid = await engine.cli(['inspect', '-f', '{{.State.Pid}}', c.name]);
      expect((await execa('nsenter', ['-t', pid, '-n', '--', 'ethtool', '-k', 'eth0'])).stdout).toMatch(
        /^tx-checksumming: off$/m,
      );
    }

    expect((await wget(a.name, '10.203.0.3')).trim()).toBe(b.name);
    expect((await wget(b.name, '10.203.0.2')).trim()).toBe(a.name);

    // The port is the host end of the veth: both are on the host while the container runs.
    const [vethA] = await portsOf(a.id);
    const [vethB] = await portsOf(b.id);
    expect(await linkExists(vethA!)).toBe(true);
    expect(await linkExists(vethB!)).toBe(true);

    await engine.cli(['stop', '-t', '1', b.name]);
    await waitFor(async () => (await portsOf(b.id)).length === 0, {
      timeoutMs: 20_000,
      what: `${b.name}'s port to go`,
    });
    await waitFor(() => runs.some((r) => r.event === 'die' && r.containerId === b.id), {
      timeoutMs: 20_000,
      what: `${b.name}'s die run`,
    });
    expect(await linkExists(vethB!)).toBe(false);
    await engine.cli(['rm', '-f', a.name]);
    await waitFor(async () => (await portsOf(a.id)).length === 0, {
      timeoutMs: 20_000,
      what: `${a.name}'s port to go`,
    });
    await waitFor(() => runs.some((r) => r.event === 'die' && r.containerId === a.id), {
      timeoutMs: 20_000,
      what: `${a.name}'s die run`,
    });
    expect(await linkExists(vethA!)).toBe(false);
    expect((await ovs.ports(bridge)).map((p) => p.name)).toEqual([]);

    // A restart of a stopped container plugs it again.
    await engine.cli(['start', b.name]);
    await waitFor(async () => (await portsOf(b.id)).length === 1, {
      timeoutMs: 20_000,
      what: `${b.name} plugged again after restart`,
    });
    await glue.stop();
    await engine.cli(['rm', '-f', b.name]);
    expect(runs.filter((r) => !r.ok).map((r) => `${r.event} ${r.containerName}: ${String(r.error)}`)).toEqual([]);
  });

  it('at start-up sweeps ports left by a crash and plugs containers that started while Glue was down', async () => {
    // A port from a crash: its container is long gone, the host end of its veth is still there.
    const stale = ovs.uniqueName('govs');
    const stalePeer = ovs.uniqueName('govp');
    await ip(['link', 'add', stale, 'type', 'veth', 'peer', 'name', stalePeer]);
    onTestFinished(() => execa('ip', ['link', 'del', 'dev', stale], { reject: false }).then(() => undefined));
    await ip(['link', 'set', 'dev', stale, 'up']);
    await ovs.vsctl([
      'add-port',
      bridge,
      stale,
      '--',
      'set',
      'Interface',
      stale,
      `external_ids:container_id="${'d'.repeat(64)}"`,
      'external_ids:container_iface=eth0',
      `external_ids:glue_engine="${engineId}"`,
    ]);
    // A port this engine's Glue does not own (another host's): left alone.
    const foreign = ovs.uniqueName('govf');
    await ovs.vsctl([
      'add-port',
      bridge,
      foreign,
      '--',
      'set',
      'Interface',
      foreign,
      `external_ids:container_id="${'e'.repeat(64)}"`,
      'external_ids:glue_engine="SOME:OTHER:ENGINE"',
    ]);
    const c = await engine.run({ network: 'none', labels: { glue_ovs_ip: '10.203.0.4/24' } });
    const d = await engine.run({ network: 'none', labels: { glue_ovs_ip: '10.203.0.5/24' } });
    expect(await portsOf(c.id)).toEqual([]);

    const glue = await startGlue();
    onTestFinished(() => glue.stop());
    await waitFor(async () => (await portsOf(c.id)).length === 1 && (await portsOf(d.id)).length === 1, {
      timeoutMs: 20_000,
      what: 'running containers plugged at start-up',
    });
    const names = (await ovs.ports(bridge)).map((p) => p.name);
    expect(names).not.toContain(stale);
    expect(await linkExists(stale)).toBe(false);
    expect(await linkExists(stalePeer)).toBe(false);
    expect(names).toContain(foreign);
    expect((await wget(c.name, '10.203.0.5')).trim()).toBe(d.name);

    // Glue stops; d is removed meanwhile; the next Glue leaves no stale port behind.
    await glue.stop();
    const [vethD] = await portsOf(d.id);
    await engine.cli(['rm', '-f', d.name]);
    expect(await portsOf(d.id)).toHaveLength(1);
    const again = await startGlue();
    onTestFinished(() => again.stop());
    await waitFor(async () => (await portsOf(d.id)).length === 0, {
      timeoutMs: 20_000,
      what: `${d.name}'s stale port swept`,
    });
    expect(await linkExists(vethD!)).toBe(false);
    expect(await portsOf(c.id)).toHaveLength(1);
    await again.stop();
    await ovs.vsctl(['--if-exists', 'del-port', bridge, foreign]);
  });

  it('reconcile-interval: a port deleted behind its back is plugged again without an event', async () => {
    const c = await engine.run({ network: 'none', labels: { glue_ovs_ip: '10.203.0.8/24' } });
    const glue = await startGlue(engine, { 'reconcile-interval': '1' });
    onTestFinished(() => glue.stop());
    await waitFor(async () => (await portsOf(c.id)).length === 1, { timeoutMs: 20_000, what: 'plugged at start-up' });
    const [port] = await portsOf(c.id);
    await ovs.vsctl(['del-port', bridge, port!]);
    expect(await portsOf(c.id)).toEqual([]);
    await waitFor(async () => (await portsOf(c.id)).length === 1, {
      timeoutMs: 10_000,
      what: 'the periodic reconcile to plug it again',
    });
    await glue.stop();
    await engine.cli(['rm', '-f', c.id]);
  });

  it('a container on a Docker network with a glue_ovs_bridge label gets eth1 on the bridge next to its eth0', async () => {
    const glue = await startGlue();
    onTestFinished(() => glue.stop());
    const web = await engine.run({ labels: { glue_ovs_bridge: bridge, glue_ovs_ip: '10.203.1.2/24' } });
    const probe = await engine.run({ network: 'none', labels: { glue_ovs_ip: '10.203.1.3/24' } });
    await waitFor(async () => (await portsOf(web.id)).length === 1 && (await portsOf(probe.id)).length === 1, {
      timeoutMs: 20_000,
      what: 'both ports',
    });
    expect(web.ip).not.toBe('');
    expect(await engine.cli(['exec', web.name, 'ip', '-o', 'addr', 'show', 'dev', 'eth1'])).toContain('10.203.1.2/24');
    expect(await engine.cli(['exec', web.name, 'ip', '-o', 'addr', 'show', 'dev', 'eth0'])).toContain(web.ip);
    expect((await wget(probe.name, '10.203.1.2')).trim()).toBe(web.name);
    await engine.cli(['rm', '-f', web.name, probe.name]);
    await waitFor(async () => (await portsOf(web.id)).length === 0 && (await portsOf(probe.id)).length === 0, {
      timeoutMs: 20_000,
      what: 'their ports to go',
    });
  });

  it('refuses a --network host container with a glue_ovs_bridge label: the host keeps its routes and addresses', async () => {
    const glue = await startGlue();
    onTestFinished(() => glue.stop());
    const before = runs.length;
    const routeBefore = await ip(['route', 'show', 'default']);
    const hostnet = await engine.run({
      network: 'host',
      labels: { glue_ovs_bridge: bridge, glue_ovs_ip: '10.203.2.9/24', glue_ovs_gateway: '10.203.2.1' },
      cmd: ['sleep', '300'],
    });
    onTestFinished(() => engine.cli(['rm', '-f', hostnet.name]).then(() => undefined));
    await waitFor(() => runs.slice(before).some((r) => r.event === 'start' && r.containerId === hostnet.id), {
      timeoutMs: 20_000,
      what: 'the start run',
    });
    const run = runs.slice(before).find((r) => r.event === 'start' && r.containerId === hostnet.id)!;
    expect(run.ok).toBe(false);
    expect(String(run.error)).toContain(
      `container ${hostnet.name}: label glue_ovs_bridge="${bridge}": network mode host:`,
    );
    expect(await portsOf(hostnet.id)).toEqual([]);
    expect(await ip(['route', 'show', 'default'])).toBe(routeBefore);
    expect(await ip(['-o', 'addr', 'show'])).not.toContain('10.203.2.9');
    await glue.stop();
  });

  it('a bad label fails that container with a clear message and plugs nothing', async () => {
    const glue = await startGlue();
    onTestFinished(() => glue.stop());
    const before = runs.length;
    const bad = await engine.run({ network: 'none', labels: { glue_ovs_vlan: '5000' } });
    await waitFor(() => runs.slice(before).some((r) => r.event === 'start' && r.containerName === bad.name), {
      timeoutMs: 20_000,
      what: 'the start run',
    });
    const run = runs.slice(before).find((r) => r.event === 'start' && r.containerName === bad.name)!;
    expect(run.ok).toBe(false);
    expect(String(run.error)).toContain(
      `container ${bad.name}: label glue_ovs_vlan="5000": VLAN tag 5000 is not between 0 and 4094`,
    );
    expect(await portsOf(bad.id)).toEqual([]);
    await glue.stop();
  });
  it("a second engine with the same docker info ID on the same bridge leaves the first engine's ports alone", async () => {
    const two = await startDockerd();
    onTestFinished(() => two.stop());
    const [infoOne, infoTwo] = (await Promise.all([engine.docker.info(), two.docker.info()])) as Array<{ ID: string }>;
    // The premise: both engines report one ID (it comes from /etc/docker/key.json).
    expect(infoOne?.ID).toBe(infoTwo?.ID);
    const glue = await startGlue();
    onTestFinished(() => glue.stop());
    const a = await engine.run({ network: 'none', labels: { glue_ovs_ip: '10.204.0.2/24' } });
    await waitFor(async () => (await portsOf(a.id)).length === 1, {
      timeoutMs: 20_000,
      what: "the first engine's port",
    });
    const before = runs.length;
    // The second engine's Glue starts: its start-up reconcile sweeps only ports of its own engine.
    const second = await startGlue(two);
    onTestFinished(() => second.stop());
    await waitFor(() => runs.slice(before).some((r) => r.event === 'none'), {
      timeoutMs: 20_000,
      what: "the second engine's start-up run",
    });
    expect(await portsOf(a.id)).toHaveLength(1);
  });
});
