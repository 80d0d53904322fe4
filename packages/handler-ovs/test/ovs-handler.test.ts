import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Agent, GlueError, type IniDocument, LabelError, ParamError } from '@glue/core';
import {
  captureLogger,
  contextFor,
  fakeAgent,
  fakeContainer,
  handlerContractSuite,
  writeHandlerIni,
} from '@glue/core/contract';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { OVSHandler, portSpecFor } from '../src/index.js';
import { FakeHost } from './fake-host.js';

const dir = mkdtempSync(join(tmpdir(), 'glue-ovs-unit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let host: FakeHost;
beforeEach(() => {
  host = new FakeHost();
  host.addBridge('br-test');
});

function make(
  params: Record<string, string>,
  agent = fakeAgent(),
): { h: OVSHandler; agent: ReturnType<typeof fakeAgent> } {
  const ini = writeHandlerIni(dir, 'ovs.ini', params);
  return { h: new OVSHandler(agent, ini.path, ini, { runner: host.runner, netnsOf: host.netnsOf }), agent };
}

function running(spec: Parameters<typeof fakeContainer>[0] & { pid: number }): ReturnType<typeof fakeContainer> {
  host.pids.add(spec.pid);
  return fakeContainer(spec);
}

// The contract suite, on a host model (a real OVS runs in the integration tests).
const contractHost = new FakeHost();
contractHost.addBridge('br-test');
class ContractOVSHandler extends OVSHandler {
  constructor(agent: Agent, iniFile: string, ini: IniDocument) {
    super(agent, iniFile, ini, { runner: contractHost.runner, netnsOf: contractHost.netnsOf });
  }
}
handlerContractSuite({ name: 'OVSHandler', handlerClass: ContractOVSHandler, params: { 'ovs-bridge': 'br-test' } });

describe('params', () => {
  it('reads the original ovs.ini keys and ovs-docker style ovs-options', () => {
    const { h } = make({
      'ovs-bridge': 'br-int',
      'ovs-interface': 'eth1',
      'ovs-options': '--mtu=1450 --vlan=12 --ipaddress=10.9.0.2/24 --gateway=10.9.0.1',
    });
    expect(h.settings.bridge).toBe('br-int');
    expect(h.settings.iface).toBe('eth1');
    expect(h.settings.defaults).toEqual({ mtu: 1450, vlan: 12, cidr: '10.9.0.2/24', gateway: '10.9.0.1' });
    expect(h.settings.networkNone).toBe(true);
    expect(h.settings.txOffload).toBe('auto');
  });

  it('throws a ParamError naming the key and every problem', () => {
    expect(() => make({ 'ovs-bridge': 'br int' })).toThrow(ParamError);
    expect(() => make({ 'ovs-bridge': 'br int' })).toThrow(
      /ovs\.ini \[params\] ovs-bridge: "br int": an interface name/,
    );
    // One problem per line of the message, and each in err.problems (the loader gives each its line).
    expect(() => make({ 'ovs-options': '--mtu=9 --speed=fast' })).toThrow(
      /ovs-options: --mtu="9": MTU 9 is not between 68 and 65535\novs\.ini \[params\] ovs-options: "--speed=fast": not one of/,
    );
    expect(() => make({ 'ovs-options': '--ipaddress=10.0.0.2/24 --gateway=10.0.1.1' })).toThrow(
      /gateway 10\.0\.1\.1 is not inside 10\.0\.0\.2\/24/,
    );
    expect(() => make({ 'ovs-db': '/run/db.sock' })).toThrow(/ovs-db/);
    expect(() => make({ 'tx-offload': 'maybe' })).toThrow(/tx-offload/);
    expect(() => make({ 'network-none': 'perhaps' })).toThrow(/network-none/);
    expect(() => make({ timeout: '-1' })).toThrow(/timeout/);
  });

  it('passes ovs-db to every ovs-vsctl call', async () => {
    const { h, agent } = make({ 'ovs-bridge': 'br-test', 'ovs-db': 'unix:/tmp/x/db.sock' });
    await h.handle('none', '', contextFor(agent, 'none', ''));
    const vsctl = host.calls.filter((c) => c[0] === 'ovs-vsctl');
    expect(vsctl.length).toBeGreaterThan(0);
    for (const c of vsctl) expect(c[1]).toBe('--db=unix:/tmp/x/db.sock');
  });
});

describe('start', () => {
  it('builds a veth, configures it inside the namespace and adds the port with external_ids', async () => {
    const { h, agent } = make({ 'ovs-bridge': 'br-test' });
    const c = running({
      name: 'web1',
      networkMode: 'none',
      pid: 501,
      labels: {
        glue_ovs_ip: '10.50.0.2/24',
        glue_ovs_gateway: '10.50.0.1',
        glue_ovs_mtu: '1400',
        glue_ovs_mac: '02:00:00:00:00:02',
        glue_ovs_vlan: '7',
      },
    });
    agent.put(c);
    await h.handle('start', c.Id, contextFor(agent, 'start', c.Id));
    const [port] = host.portsOn('br-test');
    expect(port).toMatch(/^glv[0-9a-f]{12}$/);
    const iface = host.interfaces.get(port!)!;
    expect(iface.externalIds).toEqual({ container_id: c.Id, container_iface: 'eth0', glue_engine: 'FAKE:ENGINE' });
    expect(iface.tag).toBe(7);
    expect(iface.error).toBe('');
    expect([...host.nsLinks.get(501)!]).toEqual(['eth0']);
    expect(host.ethtool).toEqual(['501 -K eth0 tx off']);
    const lines = host.calls.map((c) => c.join(' '));
    const peer = port!.replace('glv', 'glp');
    expect(lines).toContain(`ip link add ${port} type veth peer name ${peer}`);
    expect(lines).toContain(`ip link set dev ${peer} netns 501`);
    expect(lines).toContain(`nsenter -t 501 -n -- ip link set dev ${peer} name eth0`);
    expect(lines).toContain('nsenter -t 501 -n -- ip link set dev eth0 address 02:00:00:00:00:02');
    expect(lines).toContain('nsenter -t 501 -n -- ip link set dev eth0 mtu 1400');
    expect(lines).toContain('nsenter -t 501 -n -- ip addr add 10.50.0.2/24 dev eth0');
    expect(lines).toContain('nsenter -t 501 -n -- ip route replace default via 10.50.0.1 dev eth0');
    expect(lines).toContain(`ip link set dev ${port} mtu 1400`);
    expect(lines.find((l) => l.includes('add-port'))).toContain(
      `--may-exist add-port br-test ${port} -- set Interface ${port} external_ids:container_id="${c.Id}"`,
    );
    // argv only: no shell anywhere
    expect(host.calls.some((c) => c[0] === 'sh' || c[0] === 'bash')).toBe(false);
  });

  it('is idempotent: a second start leaves a working port alone', async () => {
    const { h, agent } = make({ 'ovs-bridge': 'br-test' });
    const c = running({ networkMode: 'none', pid: 502 });
    agent.put(c);
    await h.handle('start', c.Id, contextFor(agent, 'start', c.Id));
    const before = host.calls.length;
    await h.handle('start', c.Id, contextFor(agent, 'start', c.Id));
    expect(
      host.calls
        .slice(before)
        .map((x) => x.slice(0, 3).join(' '))
        .filter((x) => x.includes('add')),
    ).toEqual([]);
    expect(host.portsOn('br-test')).toHaveLength(1);
  });

  it('labels pick the bridge and interface for a container on a Docker network (default eth1)', async () => {
    host.addBridge('br-other', 'system');
    const { h, agent } = make({});
    const c = running({ networkMode: 'bridge', pid: 503, labels: { glue_ovs_bridge: 'br-other' } });
    agent.put(c);
    await h.handle('start', c.Id, contextFor(agent, 'start', c.Id));
    expect(host.portsOn('br-other')).toHaveLength(1);
    expect([...host.nsLinks.get(503)!]).toEqual(['eth1']);
    expect(host.ethtool).toEqual([]); // kernel datapath: offload left on
  });

  it('says so when the container already has the interface name asked for', async () => {
    const { h, agent } = make({ 'ovs-bridge': 'br-test', 'ovs-interface': 'eth0' });
    const c = running({ name: 'taken', networkMode: 'bridge', pid: 513, labels: { glue_ovs_bridge: 'br-test' } });
    host.nsLinks.set(513, new Set(['eth0']));
    agent.put(c);
    await expect(h.handle('start', c.Id, contextFor(agent, 'start', c.Id))).rejects.toThrow(
      /container taken: could not attach eth0 to br-test: the container already has an interface named eth0 \(choose another with glue_ovs_interface/,
    );
    expect([...host.nsLinks.get(513)!]).toEqual(['eth0']);
    expect([...host.links]).toEqual([]);
  });

  it('skips containers that are not for OVS', async () => {
    const { h, agent } = make({ 'ovs-bridge': 'br-test' });
    const web = running({ networkMode: 'bridge', pid: 504 });
    agent.put(web);
    await h.handle('start', web.Id, contextFor(agent, 'start', web.Id));
    const { h: h2, agent: a2 } = make({ 'ovs-bridge': 'br-test', 'network-none': 'no' });
    const none = running({ networkMode: 'none', pid: 505 });
    a2.put(none);
    await h2.handle('start', none.Id, contextFor(a2, 'start', none.Id));
    expect(host.calls).toEqual([]);
  });

  it('a bad label throws a LabelError naming container, label and value, and runs nothing', async () => {
    const { h, agent } = make({ 'ovs-bridge': 'br-test' });
    const bad: Record<string, string> = {
      glue_ovs_vlan: '4095',
      glue_ovs_interface: 'eth0;reboot',
      glue_ovs_ip: '10.0.0.1',
      glue_ovs_mac: 'zz:00:00:00:00:00',
      glue_ovs_bridge: '$(id)',
      glue_ovs_mtu: '1e3',
      glue_ovs_gateway: '10.0.0.300',
    };
    for (const [label, value] of Object.entries(bad)) {
      const c = running({ name: `bad-${label}`, networkMode: 'none', pid: 506, labels: { [label]: value } });
      agent.put(c);
      const err = await h.handle('start', c.Id, contextFor(agent, 'start', c.Id)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LabelError);
      expect((err as Error).message).toContain(`container bad-${label}: label ${label}=${JSON.stringify(value)}:`);
    }
    expect(host.calls).toEqual([]);
  });

  it.each(['host', `container:${'c'.repeat(64)}`])(
    'refuses a labelled container with network mode %s: LabelError, nothing run',
    async (mode) => {
      const { h, agent } = make({ 'ovs-bridge': 'br-test' });
      const c = running({
        name: 'hostnet',
        networkMode: mode,
        pid: 514,
        labels: { glue_ovs_bridge: 'br-test', glue_ovs_ip: '10.0.0.2/24', glue_ovs_gateway: '10.0.0.1' },
      });
      host.hostNetnsPids.add(514);
      agent.put(c);
      const err = await h.handle('start', c.Id, contextFor(agent, 'start', c.Id)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LabelError);
      expect((err as LabelError).label).toBe('glue_ovs_bridge');
      expect((err as Error).message).toContain(
        `container hostnet: label glue_ovs_bridge="br-test": network mode ${mode}:`,
      );
      expect(host.calls).toEqual([]);
      expect(() => portSpecFor(c, h.settings)).toThrow(LabelError);
    },
  );

  it("refuses a process in Glue's own network namespace even when the network mode does not say so", async () => {
    const { h, agent } = make({ 'ovs-bridge': 'br-test' });
    const c = running({ name: 'sneaky', networkMode: 'bridge', pid: 515, labels: { glue_ovs_bridge: 'br-test' } });
    host.hostNetnsPids.add(515);
    agent.put(c);
    await expect(h.handle('start', c.Id, contextFor(agent, 'start', c.Id))).rejects.toThrow(
      /container sneaky: process 515 is in Glue's own network namespace \(network mode bridge\): refusing/,
    );
    expect(host.calls.filter((x) => x[0] !== 'ovs-vsctl')).toEqual([]);
    expect([...host.links]).toEqual([]);
    expect(host.portsOn('br-test')).toEqual([]);
  });

  it('a missing bridge is a clear error', async () => {
    const { h, agent } = make({ 'ovs-bridge': 'br-nope' });
    const c = running({ name: 'lost', networkMode: 'none', pid: 507 });
    agent.put(c);
    await expect(h.handle('start', c.Id, contextFor(agent, 'start', c.Id))).rejects.toThrow(
      /container lost: OVS bridge br-nope does not exist/,
    );
  });

  it('does not trust exit 0 from ovs-vsctl: an interface error fails the attach and rolls back', async () => {
    host.addPortError = 'could not add network device to OVS (Operation not supported)';
    const { h, agent } = make({ 'ovs-bridge': 'br-test' });
    const c = running({ name: 'flaky', networkMode: 'none', pid: 508 });
    agent.put(c);
    await expect(h.handle('start', c.Id, contextFor(agent, 'start', c.Id))).rejects.toThrow(
      /container flaky: could not attach eth0 to br-test: OVS cannot use glv[0-9a-f]+: could not add network device/,
    );
    expect(host.portsOn('br-test')).toEqual([]);
    expect([...host.links]).toEqual([]);
  });

  it('waits briefly for the ofport OVS assigns after add-port', async () => {
    host.ofportLag = 3;
    const { h, agent } = make({ 'ovs-bridge': 'br-test' });
    const c = running({ name: 'slow', networkMode: 'none', pid: 516 });
    agent.put(c);
    await h.handle('start', c.Id, contextFor(agent, 'start', c.Id));
    expect(host.portsOn('br-test')).toHaveLength(1);
    expect(host.calls.filter((x) => x.includes('name=' + JSON.stringify(host.portsOn('br-test')[0])))).toHaveLength(4);
  });

  it('a port that never gets an ofport fails the attach (bounded wait) and is rolled back', async () => {
    host.ofportLag = Infinity;
    const { h, agent } = make({ 'ovs-bridge': 'br-test', timeout: '0.3' });
    const c = running({ name: 'noport', networkMode: 'none', pid: 517 });
    agent.put(c);
    const t = Date.now();
    await expect(h.handle('start', c.Id, contextFor(agent, 'start', c.Id))).rejects.toThrow(
      /container noport: could not attach eth0 to br-test: OVS gave glv[0-9a-f]{12} no ofport within 300 ms of add-port/,
    );
    expect(Date.now() - t).toBeLessThan(2000);
    expect(host.portsOn('br-test')).toEqual([]);
    expect([...host.links]).toEqual([]);
  });

  it('warns once per container about unknown glue_ovs_* labels, naming the known ones', async () => {
    const log = captureLogger();
    const agent = fakeAgent({ logger: log.logger });
    const { h } = make({ 'ovs-bridge': 'br-test' }, agent);
    const c = running({
      name: 'typo',
      networkMode: 'none',
      pid: 518,
      labels: { glue_ovs_ipaddr: '10.0.0.2/24', glue_ovs_ip: '10.0.0.3/24' },
    });
    agent.put(c);
    await h.handle('start', c.Id, contextFor(agent, 'start', c.Id));
    await h.handle('none', '', contextFor(agent, 'none', ''));
    const warnings = log.lines.filter((l) => l.msg.startsWith('unknown label'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ container: 'typo', label: 'glue_ovs_ipaddr' });
    expect(warnings[0]!.msg).toContain('glue_ovs_ip, glue_ovs_gateway');
  });

  it('a failing step inside the namespace rolls back the veth', async () => {
    host.failWhen = (argv) => (argv.includes('addr') ? 'RTNETLINK answers: Permission denied' : undefined);
    const { h, agent } = make({ 'ovs-bridge': 'br-test', 'ovs-options': '--ipaddress=10.1.0.5/16' });
    const c = running({ name: 'denied', networkMode: 'none', pid: 509 });
    agent.put(c);
    await expect(h.handle('start', c.Id, contextFor(agent, 'start', c.Id))).rejects.toThrow(
      /container denied: could not attach eth0 to br-test: `nsenter -t 509 -n -- ip -batch -` \(.*addr add 10\.1\.0\.5\/16 dev eth0.*\) exited 1: RTNETLINK answers: Permission denied/,
    );
    expect([...host.links]).toEqual([]);
    expect(host.portsOn('br-test')).toEqual([]);
  });

  it('rolls back a half-built port even when the run is cancelled midway', async () => {
    const { h, agent } = make({ 'ovs-bridge': 'br-test' });
    const c = running({ name: 'cancelled', networkMode: 'none', pid: 512 });
    agent.put(c);
    const abort = new AbortController();
    host.failWhen = (argv) => {
      if (!argv.includes('ethtool')) return undefined;
      abort.abort();
      return 'cancelled';
    };
    const ctx = { ...contextFor(agent, 'start', c.Id), signal: abort.signal };
    await expect(h.handle('start', c.Id, ctx)).rejects.toThrow(/container cancelled: could not attach/);
    expect([...host.links]).toEqual([]);
    expect(host.portsOn('br-test')).toEqual([]);
  });
});

describe('errors name the handler and its INI file', () => {
  it('LabelErrors, failed commands in a reconcile and in an attach', async () => {
    const { h, agent } = make({ 'ovs-bridge': 'br-test' });
    const tag = { handler: 'ovs.ini', file: join(dir, 'ovs.ini') };
    const bad = running({ name: 'bad', networkMode: 'none', pid: 701, labels: { glue_ovs_mtu: 'x' } });
    agent.put(bad);
    const labelErr = await h.handle('start', bad.Id, contextFor(agent, 'start', bad.Id)).catch((e: unknown) => e);
    expect(labelErr).toBeInstanceOf(LabelError);
    expect(labelErr).toMatchObject({ ...tag, container: 'bad', label: 'glue_ovs_mtu' });

    host.failWhen = (argv) =>
      argv.join(' ') === 'ip -o link show' ? 'Cannot open netlink socket: Permission denied' : undefined;
    const linksErr = await h.reconcile(new AbortController().signal).catch((e: unknown) => e);
    expect(linksErr).toBeInstanceOf(GlueError);
    expect(linksErr).toMatchObject(tag);
    expect((linksErr as Error).message).toMatch(/`ip -o link show` exited 1: Cannot open netlink socket/);

    host.failWhen = (argv) => (argv[0] === 'ovs-vsctl' ? 'ovs-vsctl: database connection failed' : undefined);
    const good = running({ name: 'good', networkMode: 'none', pid: 702 });
    agent.put(good);
    const vsctlErr = await h.handle('start', good.Id, contextFor(agent, 'start', good.Id)).catch((e: unknown) => e);
    expect(vsctlErr).toBeInstanceOf(GlueError);
    expect(vsctlErr).toMatchObject(tag);
    expect((vsctlErr as Error).message).toMatch(
      /^container good: looking up bridge br-test and ports: `ovs-vsctl .*` exited 1: ovs-vsctl: database connection failed/,
    );
    const detachErr = await h.handle('die', good.Id, contextFor(agent, 'die', good.Id)).catch((e: unknown) => e);
    expect(detachErr).toMatchObject(tag);
    expect((detachErr as Error).message).toMatch(
      new RegExp(`^container ${good.Id.slice(0, 12)}: removing port glv[0-9a-f]{12}: .*database connection failed`),
    );

    host.failWhen = (argv) => (argv.includes('addr') ? 'RTNETLINK answers: Permission denied' : undefined);
    const { h: h2, agent: a2 } = make({ 'ovs-bridge': 'br-test', 'ovs-options': '--ipaddress=10.1.0.5/16' });
    a2.put(good);
    const batchErr = await h2.handle('start', good.Id, contextFor(a2, 'start', good.Id)).catch((e: unknown) => e);
    expect(batchErr).toMatchObject(tag);
    expect((batchErr as Error).cause).toBeInstanceOf(GlueError);
    expect((batchErr as Error).cause).toMatchObject(tag);
  });
});

describe('die / destroy', () => {
  it('removes the container ports found by external_ids, idempotently', async () => {
    const { h, agent } = make({ 'ovs-bridge': 'br-test' });
    const c = running({ networkMode: 'none', pid: 510 });
    const other = running({ networkMode: 'none', pid: 511 });
    agent.put(c);
    agent.put(other);
    await h.handle('start', c.Id, contextFor(agent, 'start', c.Id));
    await h.handle('start', other.Id, contextFor(agent, 'start', other.Id));
    expect(host.portsOn('br-test')).toHaveLength(2);
    const [mine] = [...host.interfaces].filter(([, i]) => i.externalIds.container_id === c.Id).map(([n]) => n);
    host.killContainer(510, [mine!]);
    await h.handle('die', c.Id, contextFor(agent, 'die', c.Id));
    await h.handle('destroy', c.Id, contextFor(agent, 'destroy', c.Id));
    expect(host.portsOn('br-test')).toHaveLength(1);
    expect(host.interfaces.get(host.portsOn('br-test')[0]!)!.externalIds.container_id).toBe(other.Id);
  });

  it('with the last inspection, die removes the port in the call that lists the ports, then reads back', async () => {
    const { h, agent } = make({ 'ovs-bridge': 'br-test' });
    const c = running({ networkMode: 'none', pid: 515 });
    agent.put(c);
    await h.handle('start', c.Id, contextFor(agent, 'start', c.Id));
    const [port] = host.portsOn('br-test');
    // ovs-docker's port for the same container, under its own name
    host.addStalePort('odock0000000_l', 'br-test', { container_id: c.Id, container_iface: 'eth1' }, true);
    host.killContainer(515, [port!]);
    const before = host.calls.length;
    expect(await h.detach(c.Id, new AbortController().signal, c)).toEqual([port, 'odock0000000_l']);
    const vsctl = host.calls
      .slice(before)
      .filter((x) => x[0] === 'ovs-vsctl')
      .map((x) => x.filter((a) => !a.startsWith('--timeout')).join(' '));
    expect(vsctl[0]).toContain(
      `find Interface external_ids:container_id="${c.Id}" -- --if-exists del-port ${port} -- --columns=name,ofport,error,external_ids find Interface`,
    );
    expect(vsctl[1]).toBe('ovs-vsctl --if-exists del-port odock0000000_l');
    expect(vsctl).toHaveLength(3);
    expect(host.portsOn('br-test')).toEqual([]);
    expect(host.links.has('odock0000000_l')).toBe(false);

    // A container that is gone needs one call only
    const r2 = host.calls.length;
    await h.handle('destroy', c.Id, contextFor(agent, 'destroy', c.Id));
    expect(host.calls.slice(r2).filter((x) => x[0] === 'ovs-vsctl')).toHaveLength(1);
  });

  it('also removes ports ovs-docker made for the container', async () => {
    const { h, agent } = make({ 'ovs-bridge': 'br-test' });
    const id = 'a'.repeat(64);
    host.addStalePort('aaaaaaaaaaaaa_l', 'br-test', { container_id: id, container_iface: 'eth0' }, true);
    await h.handle('destroy', id, contextFor(agent, 'destroy', id));
    expect(host.portsOn('br-test')).toEqual([]);
    expect(host.links.has('aaaaaaaaaaaaa_l')).toBe(false);
  });
});

describe('none: reconcile', () => {
  it('sweeps ports of gone containers, attaches running ones, leaves other engines alone', async () => {
    const { h, agent } = make({ 'ovs-bridge': 'br-test' });
    host.addStalePort('glvdead00000001', 'br-test', {
      container_id: 'd'.repeat(64),
      container_iface: 'eth0',
      glue_engine: 'FAKE:ENGINE',
    });
    host.addStalePort(
      'glvdead00000002',
      'br-test',
      { container_id: 'e'.repeat(64), container_iface: 'eth0', glue_engine: 'FAKE:ENGINE' },
      true,
    );
    host.addStalePort('foreign0', 'br-test', { container_id: 'f'.repeat(64), glue_engine: 'OTHER:ENGINE' });
    host.addStalePort('uplink0', 'br-test', {}, true);
    const live = running({ name: 'live', networkMode: 'none', pid: 520 });
    const stopped = fakeContainer({ name: 'stopped', networkMode: 'none', running: false });
    agent.put(live);
    agent.put(stopped);
    await h.handle('none', '', contextFor(agent, 'none', ''));
    const ports = host.portsOn('br-test');
    expect(ports).toContain('foreign0');
    expect(ports).toContain('uplink0');
    expect(ports).not.toContain('glvdead00000001');
    expect(ports).not.toContain('glvdead00000002');
    expect(host.links.has('glvdead00000002')).toBe(false);
    expect(ports).toHaveLength(3);
    expect(host.interfaces.get(ports.find((p) => p.startsWith('glv'))!)!.externalIds.container_id).toBe(live.Id);
  });

  it('does not trust del-port in the sweep: a stale port still there afterwards fails the run, its veth is kept', async () => {
    const { h, agent } = make({ 'ovs-bridge': 'br-test' });
    host.addStalePort(
      'glvstuck0000001',
      'br-test',
      { container_id: 'd'.repeat(64), container_iface: 'eth0', glue_engine: 'FAKE:ENGINE' },
      true,
    );
    host.addStalePort(
      'glvgone00000001',
      'br-test',
      { container_id: 'e'.repeat(64), container_iface: 'eth0', glue_engine: 'FAKE:ENGINE' },
      true,
    );
    host.delPortIgnored.add('glvstuck0000001');
    await expect(h.handle('none', '', contextFor(agent, 'none', ''))).rejects.toThrow(
      /reconcile: 1 container\(s\) could not be attached or swept: dddddddddddd: stale port glvstuck0000001 still on the bridge after del-port/,
    );
    expect(host.portsOn('br-test')).toEqual(['glvstuck0000001']);
    expect(host.links.has('glvgone00000001')).toBe(false);
    expect(host.links.has('glvstuck0000001')).toBe(true);
    const result = await h.reconcile(new AbortController().signal);
    expect(result.removed).toEqual([]);
    expect(result.failed).toEqual([
      { container: 'dddddddddddd', error: 'stale port glvstuck0000001 still on the bridge after del-port' },
    ]);
  });

  it('re-plugs a running container whose veth went away while Glue was down', async () => {
    const { h, agent } = make({ 'ovs-bridge': 'br-test' });
    const c = running({ networkMode: 'none', pid: 530 });
    agent.put(c);
    await h.handle('start', c.Id, contextFor(agent, 'start', c.Id));
    const [port] = host.portsOn('br-test');
    // restarted while Glue was down: old namespace gone, new PID
    host.killContainer(530, [port!]);
    const again = running({ id: c.Id, networkMode: 'none', pid: 531 });
    agent.put(again);
    await h.handle('none', '', contextFor(agent, 'none', ''));
    expect(host.portsOn('br-test')).toEqual([port]);
    expect(host.interfaces.get(port!)!.error).toBe('');
    expect([...host.nsLinks.get(531)!]).toEqual(['eth0']);
  });

  it('costs two commands when every port is in place, and a leftover veth from a crash is replaced', async () => {
    const { h, agent } = make({ 'ovs-bridge': 'br-test' });
    const cs = [601, 602, 603].map((pid) => running({ networkMode: 'none', pid }));
    for (const c of cs) agent.put(c);
    await h.handle('none', '', contextFor(agent, 'none', ''));
    expect(host.portsOn('br-test')).toHaveLength(3);
    const before = host.calls.length;
    await h.handle('none', '', contextFor(agent, 'none', ''));
    expect(host.calls.slice(before).map((c) => c.slice(0, 4).join(' '))).toEqual([
      'ip -o link show',
      'ovs-vsctl --timeout=15 --format=json --columns=name,ofport,error,external_ids',
    ]);

    // a crash between `ip link add` and add-port left the host end of a veth and no port
    const late = running({ networkMode: 'none', pid: 604 });
    agent.put(late);
    const { hostPort } = portSpecFor(late, h.settings)!;
    host.links.add(hostPort);
    await h.handle('start', late.Id, contextFor(agent, 'start', late.Id));
    expect(host.portsOn('br-test')).toContain(hostPort);
    expect(host.interfaces.get(hostPort)!.error).toBe('');
  });

  it('moves a port when the bridge in the params changed', async () => {
    host.addBridge('br-new');
    const c = running({ networkMode: 'none', pid: 610 });
    const first = make({ 'ovs-bridge': 'br-test' });
    first.agent.put(c);
    await first.h.handle('none', '', contextFor(first.agent, 'none', ''));
    expect(host.portsOn('br-test')).toHaveLength(1);
    const second = make({ 'ovs-bridge': 'br-new' }, first.agent);
    await second.h.handle('none', '', contextFor(first.agent, 'none', ''));
    expect(host.portsOn('br-test')).toEqual([]);
    expect(host.portsOn('br-new')).toHaveLength(1);
    expect([...host.nsLinks.get(610)!]).toEqual(['eth0']);
  });

  it('one failing container does not stop the others; the run fails naming it', async () => {
    const { h, agent } = make({ 'ovs-bridge': 'br-test' });
    const good = running({ name: 'good', networkMode: 'none', pid: 540 });
    const bad = running({ name: 'bad', networkMode: 'none', pid: 541, labels: { glue_ovs_vlan: 'x' } });
    agent.put(bad);
    agent.put(good);
    await expect(h.handle('none', '', contextFor(agent, 'none', ''))).rejects.toThrow(
      /1 container\(s\) could not be attached or swept: bad: container bad: label glue_ovs_vlan="x"/,
    );
    expect(host.portsOn('br-test')).toHaveLength(1);
  });
});
