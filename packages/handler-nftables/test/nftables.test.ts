import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Agent, IniDocument, ParamError } from '@glue/core';
import {
  captureLogger,
  contextFor,
  fakeAgent,
  fakeContainer,
  handlerContractSuite,
  writeHandlerIni,
} from '@glue/core/contract';
import { afterAll, describe, expect, it } from 'vitest';
import {
  buildServices,
  dockerCandidates,
  NftablesHandler,
  parseParams,
  parseTable,
  renderRuleset,
} from '../src/index.js';
import { renderPatch, tableSpec, UnsafeValueError, weightedRanges } from '../src/ruleset.js';
import { FakeKernel } from './fake-kernel.js';

const dir = mkdtempSync(join(tmpdir(), 'glue-nft-unit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ID_A = 'a'.repeat(64);
const ID_B = 'b'.repeat(64);
const udp = (port: number, listen: number, weight?: number): Record<string, string> => ({
  [`glue_udp_${port}_port`]: String(listen),
  ...(weight === undefined ? {} : { [`glue_udp_${port}_weight`]: String(weight) }),
});

function make(params: Record<string, string> = {}, kernel = new FakeKernel(), agent = fakeAgent()) {
  const ini = writeHandlerIni(dir, 'l4.ini', params);
  return { h: new NftablesHandler(agent, ini.path, ini, { runner: kernel.runner }), kernel, agent };
}

// The contract suite, on a kernel model (the integration tests run the real nft in a namespace).
const contractKernel = new FakeKernel();
class ContractNftablesHandler extends NftablesHandler {
  constructor(agent: Agent, iniFile: string, ini: IniDocument) {
    super(agent, iniFile, ini, { runner: contractKernel.runner });
  }
}
handlerContractSuite({
  name: 'NftablesHandler',
  handlerClass: ContractNftablesHandler,
  effect: () => {
    expect(contractKernel.last).toMatch(/^add table ip glue\ndelete table ip glue\ntable ip glue \{/);
  },
});

describe('params', () => {
  it('has defaults that balance UDP on every local address in table ip glue and keep the rules on stop', () => {
    const { params, problems } = parseParams({});
    expect(problems).toEqual([]);
    expect(params).toMatchObject({
      listen: 'local',
      table: 'glue',
      family: 'ip',
      masquerade: false,
      protocols: ['udp'],
      ports: { min: 1, max: 65535 },
      removeOnStop: false,
      takeover: false,
      timeoutMs: 10_000,
    });
  });

  it('reports every bad key at once, naming the value', () => {
    const { problems } = parseParams({
      listen: '10.0.0.1, 127.0.0.1,not-an-ip',
      table: 'glue; flush ruleset',
      family: 'bridge',
      protocols: 'udp,sctp',
      ports: '100-50',
      masquerade: 'maybe',
      network: 'bad net',
      nft: 'nft; rm -rf /',
      bogus: '1',
    });
    expect(problems.map((p) => p.key)).toEqual([
      'bogus',
      'listen',
      'listen',
      'table',
      'family',
      'masquerade',
      'network',
      'protocols',
      'ports',
      'nft',
    ]);
    expect(problems.find((p) => p.key === 'listen')?.reason).toMatch(/127\.0\.0\.1 is a loopback address/);
    expect(problems.find((p) => p.key === 'table')?.reason).toMatch(/"glue; flush ruleset" is not a table name/);
  });

  it('a bad param is a ParamError at construction', () => {
    expect(() => make({ family: 'arp' })).toThrow(ParamError);
  });

  it('examples/l4 l4.ini passes, with its commented params uncommented too', () => {
    const text = readFileSync(new URL('../../../examples/l4/docker-glue.d/l4.ini', import.meta.url), 'utf8');
    for (const source of [text, text.replace(/^;([a-z][a-z-]*=)/gm, '$1')]) {
      const ini = new IniDocument('l4.ini', source);
      expect(ini.section('handler').class).toBe('@glue/handler-nftables#NftablesHandler');
      expect(parseParams(ini.section('params')).problems).toEqual([]);
    }
  });

  it('claims the label families it balances', () => {
    expect(make().h.claims).toEqual([{ what: 'glue_udp_<port>_port labels', key: 'protocols' }]);
    expect(make({ protocols: 'udp,tcp' }).h.claims.map((c) => c.what)).toEqual([
      'glue_udp_<port>_port labels',
      'glue_tcp_<port>_port labels',
    ]);
  });
});

describe('model', () => {
  const options = { protocols: ['udp'] as const, ports: { min: 1, max: 65535 } };

  it('groups endpoints by protocol and listen port, in id order whatever the input order', () => {
    const a = fakeContainer({ id: ID_A, name: 'dns-a', ip: '172.17.0.2', labels: udp(53, 5353, 100) });
    const b = fakeContainer({ id: ID_B, name: 'dns-b', ip: '172.17.0.3', labels: udp(53, 5353, 50) });
    const one = buildServices(dockerCandidates([a, b], options).candidates);
    const two = buildServices(dockerCandidates([b, a], options).candidates);
    expect(one).toEqual(two);
    expect(one.services).toEqual([
      {
        protocol: 'udp',
        port: 5353,
        endpoints: [
          { id: ID_A, name: 'dns-a', address: '172.17.0.2', port: 53, weight: 100 },
          { id: ID_B, name: 'dns-b', address: '172.17.0.3', port: 53, weight: 50 },
        ],
      },
    ]);
  });

  it('leaves out containers that are stopped, paused, unhealthy or being stopped; TCP only when chosen', () => {
    const stopped = fakeContainer({ running: false, ip: '172.17.0.4', labels: udp(53, 53) });
    const sick = fakeContainer({ health: 'unhealthy', ip: '172.17.0.5', labels: udp(53, 53) });
    const draining = fakeContainer({ ip: '172.17.0.6', labels: udp(53, 53) });
    const tcp = fakeContainer({ ip: '172.17.0.7', labels: { glue_tcp_5432_port: '15432' } });
    const r = dockerCandidates([stopped, sick, draining, tcp], {
      ...options,
      outOfRotation: (id) => (id === draining.Id ? 'stopping (sent signal 15): draining' : undefined),
    });
    expect(r.candidates).toEqual([]);
    expect(r.notes.map((n) => n.reason)).toEqual([
      'not running',
      'health check says unhealthy',
      'stopping (sent signal 15): draining',
    ]);
    const withTcp = dockerCandidates([tcp], { protocols: ['udp', 'tcp'], ports: options.ports });
    expect(withTcp.candidates[0]?.routes).toEqual([{ protocol: 'tcp', port: 15432, targetPort: 5432, weight: 100 }]);
  });

  it("refuses injected values and out-of-range listen ports by label, and keeps the container's good services", () => {
    const c = fakeContainer({
      name: 'evil',
      ip: '172.17.0.8',
      labels: {
        glue_udp_53_port: '53; flush ruleset',
        glue_udp_54_port: '54',
        glue_udp_54_weight: '1 } ; drop',
        glue_udp_55_port: '80',
        glue_udp_56_port: '5600',
      },
    });
    const r = dockerCandidates([c], { protocols: ['udp'], ports: { min: 1000, max: 9999 } });
    expect(r.notes[0]?.problems.map((p) => [p.label, p.value])).toEqual([
      ['glue_udp_53_port', '53; flush ruleset'],
      ['glue_udp_54_weight', '1 } ; drop'],
      ['glue_udp_55_port', '80'],
    ]);
    expect(r.candidates[0]?.routes).toEqual([{ protocol: 'udp', port: 5600, targetPort: 56, weight: 100 }]);
  });
});

describe('ruleset', () => {
  const settings = { table: 'glue', family: 'ip' as const, listen: 'local' as const, masquerade: false };
  const endpoint = (id: string, address: string, weight: number) => ({
    id,
    name: id.slice(0, 3),
    address,
    port: 53,
    weight,
  });

  it('maps weights 0-256 onto numgen ranges in proportion (weight 0 takes no new flow)', () => {
    const r = weightedRanges([
      endpoint(ID_A, '10.0.0.2', 100),
      endpoint(ID_B, '10.0.0.3', 0),
      endpoint('c'.repeat(64), '10.0.0.4', 256),
    ]);
    expect(r).toEqual({
      total: 356,
      ranges: [
        [0, 99, 0],
        [100, 355, 2],
      ],
    });
  });

  it('writes one transaction: a service map, a chain per service and per endpoint, dnat to the container', () => {
    const model = {
      services: [
        {
          protocol: 'udp' as const,
          port: 5353,
          endpoints: [endpoint(ID_A, '10.0.0.2', 100), endpoint(ID_B, '10.0.0.3', 50)],
        },
      ],
    };
    const text = renderRuleset(model, settings);
    expect(text).toContain('elements = { udp . 5353 : goto svc_udp_5353 }');
    expect(text).toContain(
      'fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @services comment "managed by Glue"',
    );
    expect(text).toContain(
      `numgen random mod 150 vmap { 0-99 : goto ep_udp_5353_aaaaaaaaaaaa_53, 100-149 : goto ep_udp_5353_bbbbbbbbbbbb_53 }`,
    );
    expect(text).toContain('meta l4proto udp dnat ip to 10.0.0.3:53 comment "bbb"');
    expect(text).not.toContain('masquerade');
    const masq = renderRuleset(model, { ...settings, listen: ['10.9.0.1', '10.9.0.2'], masquerade: true });
    expect(masq).toContain('elements = { 10.9.0.1, 10.9.0.2 }');
    expect(masq).toContain('meta mark & 0x00004000 == 0x00004000 masquerade');
  });

  it('a service whose endpoints all have weight 0 drops new flows instead of letting them reach the host', () => {
    const text = renderRuleset(
      { services: [{ protocol: 'udp', port: 53, endpoints: [endpoint(ID_A, '10.0.0.2', 0)] }] },
      settings,
    );
    expect(text).toMatch(/chain svc_udp_53 \{\n {4}drop\n/);
  });

  it('refuses any value that is not an IPv4 address, a port or a weight, whatever the source skipped', () => {
    const bad = (e: Partial<ReturnType<typeof endpoint>>) => () =>
      renderRuleset(
        { services: [{ protocol: 'udp', port: 53, endpoints: [{ ...endpoint(ID_A, '10.0.0.2', 1), ...e }] }] },
        settings,
      );
    expect(bad({ address: '10.0.0.2; flush ruleset' })).toThrow(UnsafeValueError);
    expect(bad({ port: 0 })).toThrow(UnsafeValueError);
    expect(bad({ weight: 257 })).toThrow(UnsafeValueError);
    expect(() => renderRuleset({ services: [] }, { ...settings, table: 'x y' })).toThrow(UnsafeValueError);
  });
});

describe('patches', () => {
  const settings = { table: 'glue', family: 'ip' as const, masquerade: false };
  const ep = (id: string, address: string, weight = 100) => ({ id, name: 'x', address, port: 53, weight });
  const svc = (port: number, ...endpoints: ReturnType<typeof ep>[]) => ({ protocol: 'udp' as const, port, endpoints });
  const patch = (a: Parameters<typeof tableSpec>[0], b: Parameters<typeof tableSpec>[0]) =>
    renderPatch(tableSpec(a, settings), tableSpec(b, settings), settings);

  it('nothing changed: no transaction', () => {
    const m = { services: [svc(53, ep(ID_A, '10.0.0.2'))] };
    expect(patch(m, m)).toBeUndefined();
  });

  it('an endpoint joins: its chain first, then the service chain refilled', () => {
    expect(
      patch(
        { services: [svc(53, ep(ID_A, '10.0.0.2'))] },
        { services: [svc(53, ep(ID_A, '10.0.0.2'), ep(ID_B, '10.0.0.3'))] },
      ),
    ).toBe(
      [
        'add chain ip glue ep_udp_53_bbbbbbbbbbbb_53',
        'flush chain ip glue svc_udp_53',
        'add rule ip glue svc_udp_53 numgen random mod 200 vmap { 0-99 : goto ep_udp_53_aaaaaaaaaaaa_53, 100-199 : goto ep_udp_53_bbbbbbbbbbbb_53 }',
        'add rule ip glue ep_udp_53_bbbbbbbbbbbb_53 meta l4proto udp dnat ip to 10.0.0.3:53 comment "x"',
        '',
      ].join('\n'),
    );
  });

  it('a service goes: its map element, then its chain, then its endpoint chains; the others untouched', () => {
    const text = patch(
      { services: [svc(53, ep(ID_A, '10.0.0.2')), svc(54, ep(ID_B, '10.0.0.3'))] },
      { services: [svc(54, ep(ID_B, '10.0.0.3'))] },
    );
    expect(text).toBe(
      [
        'delete element ip glue services { udp . 53 }',
        'delete chain ip glue svc_udp_53',
        'delete chain ip glue ep_udp_53_aaaaaaaaaaaa_53',
        '',
      ].join('\n'),
    );
  });

  it('a weight change refills the service chain only', () => {
    const text = patch(
      { services: [svc(53, ep(ID_A, '10.0.0.2'), ep(ID_B, '10.0.0.3'))] },
      { services: [svc(53, ep(ID_A, '10.0.0.2', 50), ep(ID_B, '10.0.0.3'))] },
    );
    expect(text?.split('\n')).toEqual([
      'flush chain ip glue svc_udp_53',
      'add rule ip glue svc_udp_53 numgen random mod 150 vmap { 0-49 : goto ep_udp_53_aaaaaaaaaaaa_53, 50-149 : goto ep_udp_53_bbbbbbbbbbbb_53 }',
      '',
    ]);
  });
});

describe('read back', () => {
  it('knows its own table and the endpoints it sends to from nft -j', () => {
    const json = JSON.stringify({
      nftables: [
        { metainfo: { version: '1.0.6' } },
        { table: { family: 'ip', name: 'glue' } },
        { map: { name: 'services', elem: [[{ concat: ['udp', 5353] }, { goto: { target: 'svc_udp_5353' } }]] } },
        { rule: { chain: 'prerouting', comment: 'managed by Glue', expr: [] } },
        {
          rule: {
            chain: 'ep_udp_5353_aaaaaaaaaaaa_53',
            expr: [{ match: {} }, { dnat: { addr: '172.31.0.2', port: 53 } }],
          },
        },
      ],
    });
    expect(parseTable(json)).toEqual({
      owned: true,
      services: 1,
      endpoints: [{ protocol: 'udp', address: '172.31.0.2', port: 53 }],
    });
    expect(parseTable(JSON.stringify({ nftables: [{ table: { name: 'glue' } }] })).owned).toBe(false);
    expect(() => parseTable('{}')).toThrow(/not nft JSON/);
  });
});

describe('NftablesHandler', () => {
  it('writes the table on none, not again when nothing changed, and again when a container goes', async () => {
    const { h, kernel, agent } = make();
    const a = fakeContainer({ id: ID_A, name: 'dns-a', ip: '172.17.0.2', labels: udp(53, 5353) });
    const b = fakeContainer({ id: ID_B, name: 'dns-b', ip: '172.17.0.3', labels: udp(53, 5353) });
    agent.put(a);
    agent.put(b);
    await h.start();
    await h.handle('none', '', contextFor(agent, 'none', ''));
    expect(kernel.scripts).toHaveLength(1);
    expect(kernel.last).toContain('dnat ip to 172.17.0.3:53');
    await h.handle('start', a.Id, contextFor(agent, 'start', a.Id));
    expect(kernel.scripts).toHaveLength(1);
    kernel.flows.set('udp 172.17.0.3:53', 4);
    agent.put({ ...b, State: { ...b.State, Running: false } });
    await h.handle('die', b.Id, contextFor(agent, 'die', b.Id));
    expect(kernel.scripts).toHaveLength(2);
    expect(kernel.last).not.toContain('172.17.0.3');
    // The rules first, then the dead endpoint's flows.
    expect(kernel.deletions).toEqual([['-D', '-p', 'udp', '--reply-src', '172.17.0.3', '--reply-port-src', '53']]);
    await h.stop();
  });

  it('a kill with the stop signal takes the container out at once (it drains before die)', async () => {
    const { h, kernel, agent } = make();
    const a = fakeContainer({ id: ID_A, ip: '172.17.0.2', labels: udp(53, 5353) });
    agent.put(a);
    await h.start();
    await h.handle('none', '', contextFor(agent, 'none', ''));
    const kill = {
      ...contextFor(agent, 'kill', a.Id),
      event: { action: 'kill', id: a.Id, attributes: { signal: '15' }, timeNano: 1n },
    };
    await h.handle('kill', a.Id, kill);
    expect(kernel.last).not.toContain('172.17.0.2');
  });

  it('at start, a table it did not make is refused unless takeover; its own is reconciled on the first run', async () => {
    const foreign = new FakeKernel();
    foreign.table = JSON.stringify({ nftables: [{ table: { family: 'ip', name: 'glue' } }] });
    await expect(make({}, foreign).h.start()).rejects.toThrow(
      /table ip glue exists and was not made by Glue.*takeover=yes/,
    );
    await expect(make({ takeover: 'yes' }, foreign).h.start()).resolves.toBeUndefined();

    const own = new FakeKernel();
    own.table = JSON.stringify({
      nftables: [
        { rule: { chain: 'prerouting', comment: 'managed by Glue', expr: [] } },
        { rule: { chain: 'ep_udp_53_cccccccccccc_53', expr: [{ dnat: { addr: '172.17.0.9', port: 53 } }] } },
        { rule: { chain: 'ep_udp_53_aaaaaaaaaaaa_53', expr: [{ dnat: { addr: '172.17.0.2', port: 53 } }] } },
      ],
    });
    const { h, agent } = make({}, own);
    agent.put(fakeContainer({ id: ID_A, ip: '172.17.0.2', labels: udp(53, 53) }));
    await h.start();
    expect(own.scripts).toEqual([]);
    await h.handle('none', '', contextFor(agent, 'none', ''));
    expect(own.scripts).toHaveLength(1);
    // The stale endpoint of the crashed run loses its flows; the live one keeps them.
    expect(own.deletions.map((d) => d[4])).toEqual(['172.17.0.9']);
  });

  it('a failed transaction is thrown, shows in ready(), and is tried again on the next event', async () => {
    const { h, kernel, agent } = make();
    agent.put(fakeContainer({ ip: '172.17.0.2', labels: udp(53, 53) }));
    await h.start();
    kernel.failNext = 'Error: Could not process rule: No such file or directory';
    await expect(h.handle('none', '', contextFor(agent, 'none', ''))).rejects.toThrow(/nft -f - failed \(exit 1\)/);
    expect(h.ready()).toMatch(/the last nft transaction failed/);
    await h.handle('none', '', contextFor(agent, 'none', ''));
    expect(kernel.scripts).toHaveLength(1);
    expect(h.ready()).toBeUndefined();
  });

  it('a patch the kernel refuses is followed at once by the whole table, in the same run', async () => {
    const { h, kernel, agent } = make();
    agent.put(fakeContainer({ id: ID_A, ip: '172.17.0.2', labels: udp(53, 53) }));
    await h.start();
    await h.handle('none', '', contextFor(agent, 'none', ''));
    agent.put(fakeContainer({ id: ID_B, ip: '172.17.0.3', labels: udp(53, 53) }));
    kernel.failNext = 'Error: No such file or directory; did you mean table ‘glue’ in family ip?';
    await h.handle('start', ID_B, contextFor(agent, 'start', ID_B));
    expect(kernel.scripts).toHaveLength(2);
    expect(kernel.last).toMatch(/^add table ip glue\ndelete table ip glue\n/);
    expect(kernel.last).toContain('172.17.0.3:53');
    expect(h.ready()).toBeUndefined();
  });

  it('the periodic check writes the table whole again when it is gone, and leaves it when it is as written', async () => {
    const { h, kernel, agent } = make({ 'reconcile-interval': '0' });
    agent.put(fakeContainer({ id: ID_A, ip: '172.17.0.2', labels: udp(53, 53) }));
    await h.start();
    await h.handle('none', '', contextFor(agent, 'none', ''));
    kernel.table = JSON.stringify({
      nftables: [
        { map: { name: 'services', elem: [[{ concat: ['udp', 53] }, { goto: { target: 'svc_udp_53' } }]] } },
        { rule: { chain: 'prerouting', comment: 'managed by Glue', expr: [] } },
        { rule: { chain: 'ep_udp_53_aaaaaaaaaaaa_53', expr: [{ dnat: { addr: '172.17.0.2', port: 53 } }] } },
      ],
    });
    await h.checkDrift();
    expect(kernel.scripts).toHaveLength(1);
    kernel.table = undefined; // nft flush ruleset
    await h.checkDrift();
    expect(kernel.scripts).toHaveLength(2);
    expect(kernel.last).toMatch(/^add table ip glue\n/);
    await h.stop();
  });

  it('logs a refused label once with container, label and value; the other services keep their rules', async () => {
    const log = captureLogger();
    const agent = fakeAgent({ logger: log.logger });
    const { h, kernel } = make({}, new FakeKernel(), agent);
    agent.put(fakeContainer({ name: 'evil', ip: '172.17.0.2', labels: { glue_udp_53_port: '53 ; flush ruleset' } }));
    agent.put(fakeContainer({ name: 'good', ip: '172.17.0.3', labels: udp(53, 53) }));
    await h.start();
    await h.handle('none', '', contextFor(agent, 'none', ''));
    await h.handle('none', '', contextFor(agent, 'none', ''));
    const refused = log.lines.filter((l) => /refused/.test(l.msg));
    expect(refused.map((l) => l.msg)).toEqual([
      'container evil: label glue_udp_53_port="53 ; flush ruleset" is not a port (1-65535): refused',
    ]);
    expect(kernel.last).toContain('dnat ip to 172.17.0.3:53');
    expect(kernel.last).not.toContain('flush');
  });

  it('glue check: checkContainer reports its labels by its grammar and port range, contacting nothing', () => {
    const { h, kernel } = make({ ports: '1000-2000' });
    const c = fakeContainer({ ip: '172.17.0.2', labels: { glue_udp_53_port: '53', glue_udp_54_weight: '999' } });
    expect(h.checkContainer(c).map((p) => `${p.label}=${p.value}`)).toEqual([
      'glue_udp_54_weight=999',
      'glue_udp_53_port=53',
    ]);
    expect(kernel.scripts).toEqual([]);
    expect(h.labelPrefixes).toEqual(['glue_udp_']);
  });

  it('metrics: services, endpoints, transactions by kind and result, conntrack deletions; gone after stop', async () => {
    const { h, kernel, agent } = make();
    agent.put(fakeContainer({ id: ID_A, ip: '172.17.0.2', labels: udp(53, 53) }));
    const b = fakeContainer({ id: ID_B, ip: '172.17.0.3', labels: udp(53, 53) });
    agent.put(b);
    await h.start();
    await h.handle('none', '', contextFor(agent, 'none', ''));
    kernel.flows.set('udp 172.17.0.3:53', 3);
    agent.remove(b.Id);
    await h.handle('destroy', b.Id, contextFor(agent, 'destroy', b.Id));
    const text = await agent.metrics.text();
    expect(text).toContain('glue_nftables_services{handler="l4.ini"} 1');
    expect(text).toContain('glue_nftables_endpoints{handler="l4.ini"} 1');
    expect(text).toContain('glue_nftables_transactions_total{handler="l4.ini",kind="full",result="applied"} 1');
    expect(text).toContain('glue_nftables_transactions_total{handler="l4.ini",kind="patch",result="applied"} 1');
    expect(text).toContain('glue_nftables_conntrack_deleted_total{handler="l4.ini"} 3');
    await h.stop();
    expect(await agent.metrics.text()).not.toContain('glue_nftables_services{');
  });

  it('remove-on-stop deletes the table; by default the rules stay', async () => {
    const keep = make();
    await keep.h.start();
    await keep.h.stop();
    expect(keep.kernel.scripts).toEqual([]);
    const remove = make({ 'remove-on-stop': 'yes' });
    await remove.h.start();
    await remove.h.stop();
    expect(remove.kernel.last).toBe('add table ip glue\ndelete table ip glue\n');
  });

  it('a missing nft says what to install', async () => {
    const { h } = make({ nft: '/nonexistent/nft' });
    await expect(h.start()).rejects.toThrow(/\/nonexistent\/nft not found \(install nftables, or set the nft param\)/);
  });
});
