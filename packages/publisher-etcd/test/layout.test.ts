import { describe, expect, it } from 'vitest';
import { fakeContainer } from '@glue/core/contract';
import { type ContainerInspectInfo, parseLabels } from '@glue/core';
import fc from 'fast-check';
import { containerKey, hostPrefix, httpKey, httpPrefix, normalizePrefix, ownerKey, parseKey } from '../src/keys.js';
import { containerEntries, containerRecord, httpRoutes, parseFields } from '../src/record.js';
import { containerRecordSchema, httpEntrySchema } from '../src/schema.js';
import { prefixEnd } from '../src/keys.js';

const ID = 'a'.repeat(64);

describe('key layout', () => {
  it('puts containers and the owner under the host, the index under the virtual host', () => {
    expect(containerKey('/glue', 'web-01', ID)).toBe(`/glue/hosts/web-01/containers/${ID}`);
    expect(ownerKey('/glue', 'web-01')).toBe('/glue/hosts/web-01/owner');
    expect(httpKey('/glue', 'Shop.Example.com', 'web-01', ID, 80)).toBe(`/glue/http/shop.example.com/web-01/${ID}/80`);
    expect(httpPrefix('/glue', 'shop.example.com')).toBe('/glue/http/shop.example.com/');
  });

  it("escapes host ids so a slash cannot reach another host's keys", () => {
    expect(hostPrefix('/glue', 'a/b')).toBe('/glue/hosts/a%2Fb/');
    expect(hostPrefix('/glue', 'a').startsWith(hostPrefix('/glue', 'a/b'))).toBe(false);
    expect(hostPrefix('/glue', 'a/b').startsWith(hostPrefix('/glue', 'a'))).toBe(false);
  });

  it('parses every key it writes back, and nothing else', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1 }),
        fc.string({ minLength: 1 }),
        fc.string({ minLength: 1 }),
        fc.integer({ min: 1, max: 65535 }),
        (host, id, vhost, port) => {
          expect(parseKey('/p', containerKey('/p', host, id))).toEqual({ kind: 'container', host, id });
          expect(parseKey('/p', ownerKey('/p', host))).toEqual({ kind: 'owner', host });
          expect(parseKey('/p', httpKey('/p', vhost, host, id, port))).toEqual({
            kind: 'http',
            vhost: vhost.toLowerCase(),
            host,
            id,
            port,
          });
        },
      ),
    );
    expect(parseKey('/glue', '/glue/hosts/x/other')).toBeUndefined();
    expect(parseKey('/glue', '/gluex/hosts/x/owner')).toBeUndefined();
    expect(parseKey('/glue', '/glue/http/a/b/c/99999')).toBeUndefined();
    expect(parseKey('/glue', '/glue/hosts/%E0%A4%A/owner')).toBeUndefined();
  });

  it('normalises prefixes and refuses dangerous ones', () => {
    expect(normalizePrefix('glue/')).toBe('/glue');
    expect(normalizePrefix('/a/b')).toBe('/a/b');
    expect(() => normalizePrefix('/')).toThrow(/empty/);
    expect(() => normalizePrefix('/a//b')).toThrow(/segment/);
    expect(() => normalizePrefix('/a/../b')).toThrow(/segment/);
  });

  it('computes range ends for prefixes', () => {
    expect(prefixEnd('/glue/').toString()).toBe('/glue0');
    expect([...prefixEnd(Buffer.from([0x61, 0xff]))]).toEqual([0x62]);
  });
});

describe('HTTP labels', () => {
  it('reads host lists, prefix, strip_prefix and weight', () => {
    const { routes, problems } = httpRoutes({
      glue_http_80_host: 'Shop.example.com, www.example.com',
      glue_http_80_prefix: '/api/v1',
      glue_http_80_strip_prefix: '1',
      glue_http_8080_host: 'admin.example.com',
      glue_http_8080_weight: '10',
      glue_http_8080_redirect_https: 'yes',
      other: 'x',
    });
    expect(problems).toEqual([]);
    expect(routes).toEqual([
      { port: 80, vhost: 'shop.example.com', prefix: 'api/v1', stripPrefix: true, weight: 100 },
      { port: 80, vhost: 'www.example.com', prefix: 'api/v1', stripPrefix: true, weight: 100 },
      {
        port: 8080,
        vhost: 'admin.example.com',
        prefix: '',
        stripPrefix: false,
        weight: 10,
        // HTTPS routes carry their flags into the index (absent for plain HTTP).
        tls: { redirect: true, hsts: false },
      },
    ]);
  });

  it('drops only the bad route and says which label and why, in the words of the shared grammar', () => {
    const { routes, problems } = httpRoutes({
      glue_http_80_host: 'ok.example.com',
      glue_http_99999_host: 'x.example.com',
      glue_http_81_host: 'bad host;rm -rf',
      glue_http_82_host: 'w.example.com',
      glue_http_82_weight: '1000',
      glue_http_83_host: 'p.example.com',
      glue_http_83_prefix: 'a b',
    });
    expect(routes.map((r) => `${r.port}:${r.vhost}`)).toEqual(['80:ok.example.com']);
    expect(problems.map((p) => p.label).sort()).toEqual([
      'glue_http_81_host',
      'glue_http_82_weight',
      'glue_http_83_prefix',
      'glue_http_99999_host',
    ]);
    expect(problems.find((p) => p.label === 'glue_http_81_host')?.reason).toMatch(/is not a hostname/);
    expect(problems.find((p) => p.label === 'glue_http_82_weight')).toEqual({
      label: 'glue_http_82_weight',
      value: '1000',
      reason: 'is not a weight (an integer 0-256)',
    });
  });

  it('indexes exactly the routes the HAProxy handler would serve (one grammar, @glue/core)', () => {
    const samples: Record<string, string>[] = [
      // Accepted by the old, looser etcd grammar; refused by HAProxy, so no longer indexed.
      { glue_http_80_host: 'a.example.com', glue_http_80_prefix: 'a%20b' },
      { glue_http_80_host: 'a.example.com', glue_http_80_prefix: 'user@x' },
      { glue_http_80_host: 'a.example.com', glue_http_80_prefix: 'a:b' },
      { glue_http_80_host: '*.example.com' },
      { glue_http_80_host: 'a.example.com', glue_network: 'bad name' },
      { glue_http_ports: '80', glue_http_80_host: 'a.example.com', glue_http_81_host: 'b.example.com' },
      { glue_http_80_host: 'a.example.com', glue_http_80_hots: 'typo' },
      // Refused by the old grammar, accepted by HAProxy: indexed now.
      { glue_http_80_host: 'a.example.com', glue_http_80_prefix: '/api', glue_http_80_strip_prefix: 'on' },
      // Fine for both.
      { glue_http_80_host: 'A.example.com,b.example.com', glue_http_80_prefix: 'x/y/', glue_http_80_weight: '0' },
    ];
    for (const labels of samples) {
      const haproxy = parseLabels(labels);
      const etcd = httpRoutes(labels);
      const key = JSON.stringify(labels);
      expect(
        etcd.routes.map((r) => `${r.vhost}|/${r.prefix}|${r.stripPrefix}|${r.weight}|${r.port}`),
        key,
      ).toEqual(haproxy.http.map((r) => `${r.host}|/${r.prefix.slice(1)}|${r.strip}|${r.weight}|${r.port}`));
      expect(etcd.problems, key).toEqual(haproxy.problems);
    }
    expect(httpRoutes({ glue_http_80_host: 'a.example.com', glue_http_80_prefix: 'a%20b' })).toEqual({
      routes: [],
      problems: [
        { label: 'glue_http_80_prefix', value: 'a%20b', reason: expect.stringContaining('is not a path prefix') },
      ],
    });
  });

  it('agrees with the HAProxy grammar on any labels (property)', () => {
    const key = fc
      .tuple(
        fc.constantFrom('80', '81', '0', '70000'),
        fc.constantFrom('host', 'prefix', 'strip_prefix', 'weight', 'hots'),
      )
      .map(([p, k]) => `glue_http_${p}_${k}`);
    const value = fc.oneof(
      fc.string({ maxLength: 12 }),
      fc.constantFrom(
        'a.example.com',
        'B.example.com,c.example.com',
        '*.example.com',
        'x/y',
        'a%20b',
        'on',
        '1',
        '256',
        '257',
      ),
    );
    fc.assert(
      fc.property(
        fc.dictionary(fc.oneof(key, fc.constantFrom('glue_network', 'glue_http_ports', 'glue_tcp_5432_port')), value, {
          maxKeys: 6,
        }),
        (labels) => {
          const haproxy = parseLabels(labels);
          const etcd = httpRoutes(labels);
          expect(etcd.routes).toEqual(
            haproxy.http.map((r) => ({
              port: r.port,
              vhost: r.host,
              prefix: r.prefix.replace(/^\//, ''),
              stripPrefix: r.strip,
              weight: r.weight,
            })),
          );
          expect(etcd.problems).toEqual(haproxy.problems.filter((p) => !p.label.startsWith('glue_tcp_')));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('strip_prefix takes every flag word; it is off without a prefix, as in HAProxy', () => {
    expect(
      httpRoutes({ glue_http_80_host: 'a.com', glue_http_80_prefix: 'p', glue_http_80_strip_prefix: 'on' }).routes[0]
        ?.stripPrefix,
    ).toBe(true);
    expect(httpRoutes({ glue_http_80_host: 'a.com', glue_http_80_strip_prefix: '1' }).routes[0]?.stripPrefix).toBe(
      false,
    );
  });

  it('leaves TCP labels out of the HTTP index and its problems', () => {
    expect(httpRoutes({ glue_http_80_host: 'a.com', glue_tcp_5432_port: 'x' })).toEqual({
      routes: [{ port: 80, vhost: 'a.com', prefix: '', stripPrefix: false, weight: 100 }],
      problems: [],
    });
  });

  it('writes refused labels into the container record', () => {
    const c = fakeContainer({
      id: ID,
      name: 'p',
      labels: { glue_http_80_host: 'a.com', glue_http_81_host: 'b.com', glue_http_81_prefix: 'a%b' },
    });
    const r = containerRecord(c, 'h');
    expect(containerRecordSchema.parse(r)).toEqual(r);
    expect(r.http?.map((x) => x.port)).toEqual([80]);
    expect(r.labelProblems).toEqual([
      { label: 'glue_http_81_prefix', value: 'a%b', reason: expect.stringContaining('is not a path prefix') },
    ]);
    expect(containerRecord(richContainer(), 'h').labelProblems).toBeUndefined();
  });
});

function richContainer(): ContainerInspectInfo {
  const c = fakeContainer({
    id: ID,
    name: 'shop-1',
    ip: '172.31.5.7',
    labels: { z: '1', glue_http_80_host: 'shop.example.com', a: '2' },
    health: 'healthy',
  });
  const info = c as unknown as Record<string, Record<string, unknown>>;
  info.Config!.ExposedPorts = { '80/tcp': {}, '53/udp': {} };
  info.NetworkSettings!.Ports = { '80/tcp': [{ HostIp: '0.0.0.0', HostPort: '8080' }], '53/udp': null };
  info.State!.StartedAt = '2026-01-01T00:00:00Z';
  return c;
}

describe('container records', () => {
  it('summarise name, image, labels, state, health, networks, ports and routes', () => {
    const r = containerRecord(richContainer(), 'web-01');
    expect(containerRecordSchema.parse(r)).toEqual(r);
    expect(r).toMatchObject({
      v: 1,
      host: 'web-01',
      id: ID,
      name: 'shop-1',
      image: 'glue-test/busybox',
      health: 'healthy',
      state: { status: 'running', running: true, paused: false, startedAt: '2026-01-01T00:00:00Z' },
      networks: { bridge: { ip: '172.31.5.7', prefixLen: 24 } },
      ports: [
        { port: 53, protocol: 'udp', published: [] },
        { port: 80, protocol: 'tcp', published: [{ ip: '0.0.0.0', port: 8080 }] },
      ],
      http: [{ port: 80, vhost: 'shop.example.com', prefix: '', stripPrefix: false, weight: 100 }],
    });
    expect(Object.keys(r.labels ?? {})).toEqual(['a', 'glue_http_80_host', 'z']);
    expect(r.inspect).toBeUndefined();
  });

  it('are deterministic: the same inspection gives the same bytes', () => {
    const a = containerEntries(richContainer(), '/glue', 'h', parseFields('summary')).entries;
    const b = containerEntries(richContainer(), '/glue', 'h', parseFields('summary')).entries;
    expect([...a]).toEqual([...b]);
  });

  it('publish a pick of fields, or the full inspection', () => {
    const picked = containerRecord(richContainer(), 'h', parseFields('name, networks'));
    expect(Object.keys(picked).sort()).toEqual(['host', 'id', 'name', 'networks', 'v']);
    const full = containerRecord(richContainer(), 'h', parseFields('full'));
    expect((full.inspect as { Id: string }).Id).toBe(ID);
    expect(() => parseFields('name,secrets')).toThrow(/unknown field "secrets"/);
  });

  it('leave the environment (Config.Env, often secrets) out of the full inspection unless publish-env', () => {
    const info = richContainer();
    info.Config.Env = ['PATH=/usr/bin', 'DB_PASSWORD=hunter2'];
    const full = containerRecord(info, 'h', parseFields('full'));
    const inspect = full.inspect as { Id: string; Config: Record<string, unknown> };
    expect(inspect.Id).toBe(ID);
    expect(inspect.Config).not.toHaveProperty('Env');
    expect(inspect.Config.Labels).toEqual(info.Config.Labels);
    expect(
      JSON.stringify(
        containerEntries(info, '/glue', 'h', parseFields('full')).entries.get(containerKey('/glue', 'h', ID)),
      ),
    ).not.toContain('hunter2');
    expect(info.Config.Env).toEqual(['PATH=/usr/bin', 'DB_PASSWORD=hunter2']);
    const withEnv = containerRecord(info, 'h', { ...parseFields('full'), publishEnv: true });
    expect((withEnv.inspect as { Config: { Env: string[] } }).Config.Env).toEqual([
      'PATH=/usr/bin',
      'DB_PASSWORD=hunter2',
    ]);
  });

  it('give one index entry per route, pointing at the container key', () => {
    const { entries } = containerEntries(richContainer(), '/glue', 'web-01');
    expect([...entries.keys()]).toEqual([
      containerKey('/glue', 'web-01', ID),
      httpKey('/glue', 'shop.example.com', 'web-01', ID, 80),
    ]);
    const entry = httpEntrySchema.parse(
      JSON.parse(entries.get(httpKey('/glue', 'shop.example.com', 'web-01', ID, 80))!),
    );
    expect(entry).toMatchObject({
      vhost: 'shop.example.com',
      port: 80,
      addresses: { bridge: '172.31.5.7' },
      health: 'healthy',
      container: containerKey('/glue', 'web-01', ID),
      endpoint: { address: '172.31.5.7', port: 80 },
    });
  });

  describe('endpoints (address mode)', () => {
    const withPorts = (
      ports: Readonly<Record<string, ReadonlyArray<{ readonly HostIp: string; readonly HostPort: string }> | null>>,
    ): ContainerInspectInfo => {
      const info = richContainer();
      (info.NetworkSettings as unknown as { Ports: typeof ports }).Ports = ports;
      return info;
    };
    const entryOf = (info: ContainerInspectInfo, mode: 'published' | 'container', advertise?: string) => {
      const { entries, problems } = containerEntries(info, '/glue', 'h', parseFields('summary'), { mode, advertise });
      const text = entries.get(httpKey('/glue', 'shop.example.com', 'h', ID, 80));
      return { entry: text === undefined ? undefined : httpEntrySchema.parse(JSON.parse(text)), problems };
    };

    it('published: the host port at advertise-address; a specific host IP as Docker bound it', () => {
      expect(
        entryOf(withPorts({ '80/tcp': [{ HostIp: '0.0.0.0', HostPort: '32768' }] }), 'published', '10.1.0.5').entry
          ?.endpoint,
      ).toEqual({ address: '10.1.0.5', port: 32768 });
      expect(
        entryOf(withPorts({ '80/tcp': [{ HostIp: '', HostPort: '8080' }] }), 'published', '10.1.0.5').entry?.endpoint,
      ).toEqual({ address: '10.1.0.5', port: 8080 });
      expect(
        entryOf(withPorts({ '80/tcp': [{ HostIp: '192.168.7.2', HostPort: '9000' }] }), 'published', '10.1.0.5').entry
          ?.endpoint,
      ).toEqual({ address: '192.168.7.2', port: 9000 });
    });

    it('published: a port not published, or only on loopback, is not indexed, with the reason on its label', () => {
      for (const [ports, why] of [
        [{}, /container port 80 is not published \(docker run -p HOSTPORT:80, or address=container\)/],
        [{ '80/tcp': null }, /is not published/],
        [{ '80/tcp': [{ HostIp: '127.0.0.1', HostPort: '8080' }] }, /published only on loopback/],
      ] as const) {
        const { entry, problems } = entryOf(withPorts(ports), 'published', '10.1.0.5');
        expect(entry).toBeUndefined();
        expect(problems).toEqual([
          { label: 'glue_http_80_host', value: 'shop.example.com', reason: expect.stringMatching(why) },
        ]);
      }
    });

    it('container: the container address (glue_network or the default network) and the container port', () => {
      expect(entryOf(richContainer(), 'container').entry?.endpoint).toEqual({ address: '172.31.5.7', port: 80 });
    });
  });
});
