/**
 * Host slots: stable assignment, the spare pool, map text and map changes; the built-in template
 * routing host-only routes through the map; the Applier turning new and removed hosts into runtime
 * API commands (fake runtime socket; `touch` as the reload command) until the pool runs out.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fakeContainer } from '@glue/core/contract';
import { silentLogger, type ContainerInspectInfo } from '@glue/core';
import { requireBinary } from '@glue/testkit';
import { Applier } from '../src/applier.js';
import { buildModel } from '../src/model.js';
import { assertMapToken, hostMapText, mapChanges, placeModel, planSlots } from '../src/slots.js';
import { Renderer, templateContext } from '../src/template.js';
import { selfSignedPem } from '../src/tls/self-signed.js';
import { releaseSlots } from '../src/slots.js';
import { type FakeRuntime, fakeRuntime, readMap } from './helpers.js';

describe('planSlots', () => {
  it('keeps a host in its slot while it exists; new hosts take the lowest free slot', () => {
    const p1 = planSlots(['b.com', 'a.com', 'c.com'], undefined, 2, true);
    expect(Object.fromEntries(p1.assignment)).toEqual({ 'a.com': 0, 'b.com': 1, 'c.com': 2 });
    expect(p1.declared).toBe(5);
    // b.com leaves; once its slot is released, d.com takes it (the lowest free one).
    const p2 = planSlots(
      ['a.com', 'c.com', 'd.com'],
      releaseSlots(planSlots(['a.com', 'c.com'], p1, 2, false), new Set([1])),
      2,
      false,
    );
    expect(Object.fromEntries(p2.assignment)).toEqual({ 'a.com': 0, 'c.com': 2, 'd.com': 1 });
    expect(p2.declared).toBe(5);
    const p3 = planSlots(['a.com', 'c.com', 'd.com', 'e.com', 'f.com'], p2, 2, false);
    expect(p3.declared).toBe(5);
    expect(p3.assignment.get('e.com')).toBe(3);
    expect(p3.assignment.get('f.com')).toBe(4);
  });

  it('pool exhausted: the declared count grows (a reload), and a refresh declares a fresh pool', () => {
    const p1 = planSlots(['a.com'], undefined, 1, true);
    expect(p1.declared).toBe(2);
    const p2 = planSlots(['a.com', 'b.com', 'c.com'], p1, 1, false);
    expect(p2.declared).toBe(3);
    const p3 = planSlots(['a.com', 'b.com', 'c.com'], p1, 1, true);
    expect(p3.declared).toBe(4);
    expect(Object.fromEntries(p3.assignment)).toEqual(Object.fromEntries(p2.assignment));
  });

  it('spare 0: a freed slot is reused once released, a new one needs a reload; a refresh never drops a used slot', () => {
    const p1 = planSlots(['a.com', 'b.com'], undefined, 0, true);
    expect(p1.declared).toBe(2);
    const p2 = planSlots(['b.com', 'c.com'], releaseSlots(planSlots(['b.com'], p1, 0, false), new Set([0])), 0, false);
    expect(p2.declared).toBe(2);
    expect(p2.assignment.get('c.com')).toBe(0);
    const p3 = planSlots(['c.com'], p2, 0, true);
    expect(p3.assignment.get('c.com')).toBe(0);
    expect(p3.declared).toBe(1);
    const p4 = planSlots(['a.com'], { declared: 8, assignment: new Map([['a.com', 7]]) }, 0, true);
    expect(p4.declared).toBe(8);
  });

  it('a slot its host left goes to no other host until released (or a reload); its own host may come back', () => {
    const p1 = planSlots(['a.com', 'b.com'], undefined, 1, true);
    const left = planSlots(['b.com'], p1, 1, false);
    expect(Object.fromEntries(left.vacated ?? [])).toEqual({ 'a.com': 0 });
    // A new host skips the vacated slot 0 and takes the spare, 2.
    const next = planSlots(['b.com', 'c.com'], left, 1, false);
    expect(next.assignment.get('c.com')).toBe(2);
    expect(next.vacated?.get('a.com')).toBe(0);
    // One more new host: no free slot is left, the declared count grows (that takes a reload).
    expect(planSlots(['b.com', 'c.com', 'd.com'], next, 1, false)).toMatchObject({ declared: 4 });
    // The host that left comes back to its own slot.
    const back = planSlots(['a.com', 'b.com'], left, 1, false);
    expect(back.assignment.get('a.com')).toBe(0);
    expect(back.vacated).toBeUndefined();
    // Released (its backend was seen empty): the lowest free slot again.
    expect(planSlots(['b.com', 'c.com'], releaseSlots(left, new Set([0])), 1, false).assignment.get('c.com')).toBe(0);
    // A reload (refresh) frees it too.
    expect(planSlots(['b.com', 'c.com'], left, 1, true).assignment.get('c.com')).toBe(0);
  });

  it('property: stable, unique, inside the declared slots, pool size honoured', () => {
    const host = fc.constantFrom('a.com', 'b.com', 'c.com', 'd.com', 'e.com', 'f.com', 'g.com');
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.uniqueArray(host), fc.boolean()), { minLength: 1, maxLength: 12 }),
        fc.integer({ min: 0, max: 4 }),
        (steps, spare) => {
          let prev: ReturnType<typeof planSlots> | undefined;
          // Who had each slot since the last refresh: between reloads a slot never changes hands.
          let owner = new Map<number, string>();
          for (const [hosts, refresh] of steps) {
            const p = planSlots(hosts, prev, spare, refresh);
            if (refresh || !prev) owner = new Map();
            for (const [h, s] of p.assignment) {
              expect(owner.get(s) ?? h).toBe(h);
              owner.set(s, h);
            }
            const slots = [...p.assignment.values()];
            expect(new Set(slots).size).toBe(slots.length);
            expect([...p.assignment.keys()].sort()).toEqual([...hosts].sort());
            for (const s of slots) expect(s).toBeLessThan(p.declared);
            for (const [h, s] of prev?.assignment ?? []) if (p.assignment.has(h)) expect(p.assignment.get(h)).toBe(s);
            if (refresh || !prev) expect(p.declared - slots.length).toBeGreaterThanOrEqual(spare);
            prev = p;
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('host map', () => {
  it('text is sorted `<host> glue_host_<n>` lines; changes are del then add', () => {
    const p1 = planSlots(['b.com', 'a.com'], undefined, 1, true);
    expect(hostMapText(p1)).toBe('a.com glue_host_0\nb.com glue_host_1\n');
    const p2 = planSlots(['a.com', 'c.com'], p1, 1, false);
    // b.com's slot 1 is vacated (its streams may linger): c.com takes the spare.
    expect(mapChanges(p1, p2)).toEqual({ del: ['b.com'], add: [['c.com', 'glue_host_2']] });
  });

  it('never writes whitespace, a line break or other bytes', () => {
    for (const bad of ['a.com b', 'a.com\nb', 'a.com\r', '', ' a.com', 'A.COM', 'a\tb', 'é.com', '#x'])
      expect(() => assertMapToken(bad, 'host')).toThrow(/refusing/);
    expect(assertMapToken('a-b.example.com', 'host')).toBe('a-b.example.com');
    expect(() => hostMapText({ declared: 1, assignment: new Map([['x y', 0]]) })).toThrow(/refusing/);
  });
});

describe('built-in template with a host map', () => {
  const settings = {
    httpBind: '127.0.0.1:18080',
    tcpAddress: '*',
    runtimeSocket: '/run/rt.sock',
    hostMap: '/etc/haproxy/haproxy.hosts.map',
  };
  const model = buildModel([
    fakeContainer({ name: 'w1', ip: '172.17.0.2', labels: { glue_http_80_host: 'a.com' } }),
    fakeContainer({ name: 'w2', ip: '172.17.0.3', labels: { glue_http_80_host: 'a.com', glue_http_80_prefix: 'api' } }),
    fakeContainer({ name: 'w3', ip: '172.17.0.4', labels: { glue_http_80_host: 'b.com' } }),
  ]).model;

  it('prefix rules first, then the map rule; slots declared with their servers, spares empty', () => {
    const plan = planSlots(['a.com', 'b.com'], undefined, 2, true);
    const text = new Renderer().render(templateContext(model, settings, placeModel(model, plan)));
    const lines = text.split('\n').map((l) => l.trim());
    const rules = lines.filter((l) => l.startsWith('use_backend') || l.startsWith('default_backend glue_no_route'));
    expect(rules).toEqual([
      expect.stringMatching(/^use_backend http_a\.com_[0-9a-f]{8} if .*path -m beg \/api\/ }$/),
      'use_backend %[var(txn.glue_host),map(/etc/haproxy/haproxy.hosts.map,glue_no_route)]',
      'default_backend glue_no_route',
    ]);
    for (const i of [0, 1, 2, 3]) expect(lines).toContain(`backend glue_host_${i}`);
    expect(lines).not.toContain('backend glue_host_4');
    expect(text).toMatch(
      /backend glue_host_0\n {4}mode http\n {4}balance roundrobin\n {4}server w1:80 172\.17\.0\.2:80 weight 100\n/,
    );
    expect(text).toMatch(/backend glue_host_3\n {4}mode http\n {4}balance roundrobin\n\n/);
    expect(text).not.toMatch(/-m str (a|b)\.com }$/m);
  });

  it('the context exposes the map, the slots and the spare count', () => {
    const ctx = templateContext(model, { ...settings, spareBackends: 3 });
    expect(ctx.http.hostMap).toBe(settings.hostMap);
    expect(ctx.http.slots.map((s) => [s.name, s.host])).toEqual([
      ['glue_host_0', 'a.com'],
      ['glue_host_1', 'b.com'],
      ['glue_host_2', ''],
      ['glue_host_3', ''],
      ['glue_host_4', ''],
    ]);
    expect(ctx.http.spareSlots).toBe(3);
    expect(ctx.http.prefixBackends.map((b) => b.prefix)).toEqual(['/api']);
  });
});

// ---- the Applier: new and removed hosts through the runtime API ------------------------------
const dir = mkdtempSync(join(tmpdir(), 'glue-slots-'));
const sock = join(dir, 'rt.sock');
let runtime: FakeRuntime;
let commands: string[] = [];
beforeAll(async () => {
  runtime = await fakeRuntime(sock, 7000);
  commands = runtime.commands;
});
afterAll(async () => {
  await runtime.close();
  rmSync(dir, { recursive: true, force: true });
});

function world(
  spareBackends: number,
  name: string,
  template?: string,
  deleteGraceMs = 0,
  https?: { defaultCert: string; crtList: string; tlsMap: string },
) {
  const containers = new Map<string, ContainerInspectInfo>();
  const configFile = join(dir, `${name}.cfg`);
  const hostMap = join(dir, `${name}.hosts.map`);
  const applier = new Applier({
    ...(https ? { tlsMap: https.tlsMap } : {}),
    mode: 'external',
    configFile,
    haproxyBin: requireBinary('haproxy'),
    reloadCommand: ['touch', join(dir, `${name}.reloaded`)],
    runtimeSocket: sock,
    masterSocket: '',
    renderer: new Renderer(template),
    settings: {
      httpBind: '127.0.0.1:18086',
      tcpAddress: '*',
      runtimeSocket: sock,
      ...(https ? { https: { ...https, bind: '127.0.0.1:18446', acmeMap: '', hstsMaxAge: 60 } } : {}),
    },
    hostMap,
    spareBackends,
    debounceMs: 5,
    maxDelayMs: 50,
    minReloadIntervalMs: 0,
    fastPath: true,
    deleteGraceMs,
    checkTimeoutMs: 30_000,
    reloadTimeoutMs: 2000,
    logger: silentLogger(),
    compute: () => buildModel([...containers.values()]).model,
    alive: (id: string) => [...containers.values()].some((c) => c.Id === id && c.State?.Running === true),
    handlerName: 'test',
  });
  let n = 1;
  const put = (cname: string, labels: Record<string, string>) =>
    containers.set(cname, fakeContainer({ name: cname, ip: `172.17.0.${(n += 1)}`, labels }));
  return { containers, applier, put, configFile, hostMap };
}

describe('Applier with host slots', () => {
  it('a new host: add server, enable, add map, no reload; file and map on disk agree; removal: del map first', async () => {
    const { containers, applier, put, configFile, hostMap } = world(2, 'fast');
    put('a1', { glue_http_80_host: 'a.com' });
    await applier.request();
    await applier.settled();
    expect(applier.stats.reloads).toBe(1);
    expect(readMap(hostMap)).toBe('a.com glue_host_0\n');
    commands.length = 0;

    put('b1', { glue_http_80_host: 'b.com' });
    await applier.request();
    await applier.settled();
    expect(applier.stats.reloads).toBe(1);
    expect(applier.stats.runtimeApplies).toBe(1);
    expect(commands).toEqual([
      'add server glue_host_1/b1:80 172.17.0.3:80 weight 100',
      'enable server glue_host_1/b1:80',
      `add map ${hostMap} b.com glue_host_1`,
    ]);
    expect(readMap(hostMap)).toBe('a.com glue_host_0\nb.com glue_host_1\n');
    expect(readFileSync(configFile, 'utf8')).toMatch(
      /backend glue_host_1\n.*\n.*\n {4}server b1:80 172\.17\.0\.3:80 weight 100\n/,
    );

    commands.length = 0;
    containers.delete('a1');
    await applier.request();
    await applier.settled();
    expect(applier.stats.reloads).toBe(1);
    // a1 is gone: its server is retired at once (maintenance, sessions shut down), then the host
    // stops routing and the server is deleted.
    expect(commands.filter((c) => !c.startsWith('show stat'))).toEqual([
      'set server glue_host_0/a1:80 state maint',
      'shutdown sessions server glue_host_0/a1:80',
      `del map ${hostMap} a.com`,
      'del server glue_host_0/a1:80',
    ]);
    expect(readMap(hostMap)).toBe('b.com glue_host_1\n');

    // The freed slot is reused before the spares, but only once HAProxy shows its backend empty.
    commands.length = 0;
    runtime.sessions.set('glue_host_0', 1);
    put('c1', { glue_http_80_host: 'c.com' });
    await applier.request();
    await applier.settled();
    expect(commands).toContain('show stat -1 2 -1');
    expect(commands).toContain(`add map ${hostMap} c.com glue_host_2`);
    containers.delete('c1');
    await applier.request();
    await applier.settled();
    runtime.sessions.delete('glue_host_0');
    commands.length = 0;
    put('c1', { glue_http_80_host: 'c.com' });
    await applier.request();
    await applier.settled();
    expect(commands).toContain(`add map ${hostMap} c.com glue_host_0`);
    expect(applier.stats.reloads).toBe(1);
    // A prefix route is structural: one reload, and the slots keep their hosts.
    put('p1', { glue_http_80_host: 'c.com', glue_http_80_prefix: 'x' });
    await applier.request();
    await applier.settled();
    expect(applier.stats.reloads).toBe(2);
    expect(readMap(hostMap)).toBe('b.com glue_host_1\nc.com glue_host_0\n');
    expect(readdirTmp()).toEqual([]);
    await applier.stop();
  });

  it('HTTPS hosts join, change and leave through the TLS map, no reload; the map file agrees', async () => {
    const defaultCert = join(dir, 'tls-default.pem');
    const crtList = join(dir, 'tls-crt-list');
    const tlsMap = join(dir, 'tls.map');
    writeFileSync(defaultCert, await selfSignedPem());
    writeFileSync(crtList, '');
    const { containers, applier, put } = world(2, 'tls', undefined, 0, { defaultCert, crtList, tlsMap });
    put('a1', { glue_http_80_host: 'a.com' });
    await applier.request();
    await applier.settled();
    expect(applier.stats.reloads).toBe(1);
    expect(readMap(tlsMap)).toBe('');
    commands.length = 0;
    put('b1', { glue_http_80_host: 'b.com', glue_http_80_tls: 'yes' });
    await applier.request();
    await applier.settled();
    expect(commands).toEqual([
      'add server glue_host_1/b1:80 172.17.0.3:80 weight 100',
      'enable server glue_host_1/b1:80',
      `add map ${dir}/tls.hosts.map b.com glue_host_1`,
      `add map ${tlsMap} b.com tls`,
    ]);
    expect(readMap(tlsMap)).toBe('b.com tls\n');
    commands.length = 0;
    put('b1', { glue_http_80_host: 'b.com', glue_http_80_redirect_https: 'yes', glue_http_80_hsts: 'yes' });
    await applier.request();
    await applier.settled();
    expect(commands.filter((c) => c.includes(tlsMap))).toEqual([`set map ${tlsMap} b.com tls-redirect-hsts`]);
    commands.length = 0;
    containers.delete('b1');
    put('b2', { glue_http_80_host: 'b.com' });
    await applier.request();
    await applier.settled();
    // Leaving HTTPS comes first: the host is never served over HTTPS with the old flags.
    expect(commands.filter((c) => !c.startsWith('s'))[0]).toBe(`del map ${tlsMap} b.com`);
    expect(readMap(tlsMap)).toBe('');
    expect(applier.stats.reloads).toBe(1);
    await applier.stop();
  });

  it('pool exhaustion: with 2 spares the third new host reloads once, and the next config declares a fresh pool', async () => {
    const { applier, put, configFile } = world(2, 'pool');
    await applier.request();
    await applier.settled();
    expect(applier.stats.reloads).toBe(1);
    put('h1', { glue_http_80_host: 'h1.com' });
    await applier.request();
    await applier.settled();
    put('h2', { glue_http_80_host: 'h2.com' });
    await applier.request();
    await applier.settled();
    expect(applier.stats.reloads).toBe(1);
    put('h3', { glue_http_80_host: 'h3.com' });
    await applier.request();
    await applier.settled();
    expect(applier.stats.reloads).toBe(2);
    const text = readFileSync(configFile, 'utf8');
    expect(text.match(/^backend glue_host_\d+$/gm)).toHaveLength(5);
    put('h4', { glue_http_80_host: 'h4.com' });
    await applier.request();
    await applier.settled();
    expect(applier.stats.reloads).toBe(2);
    await applier.stop();
  });

  it('the same text but a different host (a name reused) is not skipped', async () => {
    const { containers, applier, put, hostMap } = world(1, 'swap');
    put('s1', { glue_http_80_host: 'one.com' });
    await applier.request();
    await applier.settled();
    const c = containers.get('s1') as ContainerInspectInfo;
    containers.set('s1', { ...c, Config: { ...c.Config, Labels: { glue_http_80_host: 'two.com' } } });
    commands.length = 0;
    await applier.request();
    await applier.settled();
    // one.com's slot may still hold its streams: two.com takes the spare.
    expect(readMap(hostMap)).toBe('two.com glue_host_1\n');
    expect(commands).toContain(`del map ${hostMap} one.com`);
    expect(commands).toContain(`add map ${hostMap} two.com glue_host_1`);
    await applier.stop();
  });
});

describe('Applier: removed servers', () => {
  it('stay in maintenance for the grace period, then are deleted without a new event', async () => {
    const { containers, applier, put } = world(1, 'grace', undefined, 400);
    put('g1', { glue_http_80_host: 'g.com' });
    await applier.request();
    await applier.settled();
    containers.delete('g1');
    commands.length = 0;
    await applier.request();
    await applier.settled();
    expect(commands.filter((c) => !c.startsWith('show'))).toEqual([
      'set server glue_host_0/g1:80 state maint',
      'shutdown sessions server glue_host_0/g1:80',
      `del map ${join(dir, 'grace.hosts.map')} g.com`,
    ]);
    const until = Date.now() + 5000;
    while (!commands.includes('del server glue_host_0/g1:80') && Date.now() < until)
      await new Promise((r) => setTimeout(r, 50));
    expect(commands).toContain('del server glue_host_0/g1:80');
    await applier.stop();
  });
});

describe('Applier with a user template', () => {
  const head =
    'global\n    stats socket {{ global.runtimeSocket }} mode 600 level admin\ndefaults\n    mode http\n    timeout connect 5s\n    timeout client 5s\n    timeout server 5s\nfrontend f\n    bind {{ http.bind }}\n    http-request set-var(txn.glue_host) req.hdr(host),lower\n';
  const slots =
    '{% for s in http.slots %}\nbackend {{ s.name }}\n{%- for v in s.servers %}\n    server {{ v.name }} {{ v.address }}:{{ v.port }}\n{%- endfor %}\n{% endfor %}';
  const cases: Array<[string, string, number]> = [
    // Routes through the map, declares every slot: a new host is a runtime change.
    ['map', `${head}    use_backend %[var(txn.glue_host),map({{ http.hostMap }})]\n${slots}`, 1],
    // Declares the slots but never uses the map (no path in the text): Glue's rule says reload.
    ['nomap', `${head}    default_backend glue_host_0\n${slots}`, 2],
    // One rule per host (a template written before host slots): the text changes, so it reloads.
    [
      'acl',
      `${head}{% for b in http.backends %}\n    use_backend {{ b.name }} if { var(txn.glue_host) -m str {{ b.host }} }\n{%- endfor %}\n{% for b in http.backends %}\nbackend {{ b.name }}\n{%- for v in b.servers %}\n    server {{ v.name }} {{ v.address }}:{{ v.port }}\n{%- endfor %}\n{% endfor %}`,
      2,
    ],
  ];
  for (const [name, text, reloads] of cases) {
    it(`${name}: a new host ${reloads === 1 ? 'joins through the runtime API' : 'reloads'}`, async () => {
      const file = join(dir, `${name}.njk`);
      writeFileSync(file, text);
      const { applier, put, hostMap } = world(2, `user-${name}`, file);
      put('u1', { glue_http_80_host: 'u1.com' });
      await applier.request();
      await applier.settled();
      commands.length = 0;
      put('u2', { glue_http_80_host: 'u2.com' });
      await applier.request();
      await applier.settled();
      expect(applier.stats.reloads).toBe(reloads);
      expect(commands.some((c) => c.startsWith('add map'))).toBe(reloads === 1);
      expect(readMap(hostMap)).toBe('u1.com glue_host_0\nu2.com glue_host_1\n');
      await applier.stop();
    });
  }
});

function readdirTmp(): string[] {
  return readdirSync(dir).filter((f) => f.endsWith('.tmp'));
}
