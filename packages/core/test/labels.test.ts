import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  describeLabelProblem,
  hasRouteLabels,
  parseFlag,
  parseHostList,
  parseLabels,
  parseNetworkName,
  parsePort,
  parsePrefix,
  parseWeight,
} from '../src/index.js';
import { isGlueLabel } from '../src/labels.js';

// The label grammar shared by every handler (moved here from @glue/handler-haproxy).
describe('label grammar', () => {
  it('hostnames: lower-cased, no port, no spaces, comma lists', () => {
    expect(parseHostList('WP1.Example.com')).toEqual({ ok: true, value: ['wp1.example.com'] });
    expect(parseHostList('a.example.com, b.example.com,a.example.com')).toEqual({
      ok: true,
      value: ['a.example.com', 'b.example.com'],
    });
    for (const bad of [
      '',
      'a.example.com:80',
      'a b',
      'a\nb',
      '-a.com',
      'a..b',
      'é.com',
      'a.com#x',
      '*.example.com',
      'x'.repeat(64),
      '\u212Aube.example.com',
      'example.\u212A',
      'straße.de',
      '\u0130nfo.com',
    ]) {
      expect(parseHostList(bad).ok, bad).toBe(false);
    }
  });

  it('prefixes: with or without the leading slash, normalised, segment characters only', () => {
    expect(parsePrefix('dashboard/horizon')).toEqual({ ok: true, value: '/dashboard/horizon' });
    expect(parsePrefix('/dashboard/horizon/')).toEqual({ ok: true, value: '/dashboard/horizon' });
    expect(parsePrefix('/')).toEqual({ ok: true, value: '' });
    for (const bad of ['a//b', 'a b', 'a/../b', "a'b", 'a"b', 'a#b', 'a\nb', 'a%20b', 'a?b', 'ä'])
      expect(parsePrefix(bad).ok, bad).toBe(false);
  });

  it('weights: integers 0-256', () => {
    expect(parseWeight('0')).toEqual({ ok: true, value: 0 });
    expect(parseWeight('256')).toEqual({ ok: true, value: 256 });
    for (const bad of ['257', '-1', '1.5', ' 1', '1e2', '', '0x10']) expect(parseWeight(bad).ok, bad).toBe(false);
  });

  it('reads the seed README labels', () => {
    const r = parseLabels({
      glue_http_80_host: 'openstack.example.com',
      glue_http_80_prefix: 'dashboard/horizon',
      glue_http_80_strip_prefix: '1',
      other: 'x',
    });
    expect(r.problems).toEqual([]);
    expect(r.http).toEqual([
      {
        host: 'openstack.example.com',
        prefix: '/dashboard/horizon',
        strip: true,
        weight: 100,
        port: 80,
        tls: false,
        redirectHttps: false,
        hsts: false,
      },
    ]);
  });

  it('UDP services: glue_udp_<port>_port and _weight, the same grammar as TCP', () => {
    const r = parseLabels({
      glue_udp_53_port: '5353',
      glue_udp_53_weight: '7',
      glue_udp_123_port: 'x',
      glue_udp_9_colour: 'red',
    });
    expect(r.udp).toEqual([{ frontendPort: 5353, port: 53, weight: 7 }]);
    expect(r.tcp).toEqual([]);
    expect(r.problems.map((p) => `${p.label} ${p.reason}`)).toEqual([
      'glue_udp_9_colour unknown label (expected glue_udp_<port>_port or _weight)',
      'glue_udp_123_port is not a port (1-65535)',
    ]);
  });

  it('HTTPS labels: tls, redirect_https and hsts (the last two imply tls); a contradiction or a bad flag drops the route', () => {
    const flags = (labels: Record<string, string>) =>
      parseLabels({ glue_http_80_host: 'a.com', ...labels }).http.map((h) => [h.tls, h.redirectHttps, h.hsts]);
    expect(flags({})).toEqual([[false, false, false]]);
    expect(flags({ glue_http_80_tls: 'yes' })).toEqual([[true, false, false]]);
    expect(flags({ glue_http_80_redirect_https: 'true' })).toEqual([[true, true, false]]);
    expect(flags({ glue_http_80_hsts: '1' })).toEqual([[true, false, true]]);
    const contradiction = parseLabels({ glue_http_80_host: 'a.com', glue_http_80_tls: 'no', glue_http_80_hsts: 'yes' });
    expect(contradiction.http).toEqual([]);
    expect(contradiction.problems).toEqual([
      {
        label: 'glue_http_80_tls',
        value: 'no',
        reason: 'contradicts glue_http_80_hsts=yes, which needs HTTPS; this route is dropped',
      },
    ]);
    const bad = parseLabels({ glue_http_80_host: 'a.com', glue_http_80_tls: 'sure', glue_http_81_host: 'b.com' });
    expect(bad.http.map((h) => h.host)).toEqual(['b.com']);
    expect(bad.problems).toEqual([
      { label: 'glue_http_80_tls', value: 'sure', reason: 'is not a flag (1/true/yes/on or 0/false/no/off)' },
    ]);
  });

  it('several ports and hosts, TCP routes, glue_network', () => {
    const r = parseLabels({
      glue_http_80_host: 'a.com,b.com',
      glue_http_8080_host: 'c.com',
      glue_http_8080_weight: '7',
      glue_tcp_5432_port: '15432',
      glue_tcp_5432_weight: '3',
      glue_network: 'backnet',
    });
    expect(r.problems).toEqual([]);
    expect(r.http.map((h) => `${h.host}:${h.port}:${h.weight}`)).toEqual([
      'a.com:80:100',
      'b.com:80:100',
      'c.com:8080:7',
    ]);
    expect(r.tcp).toEqual([{ frontendPort: 15432, port: 5432, weight: 3 }]);
    expect(r.network).toBe('backnet');
  });

  it('a bad value drops only that port, with container-readable problems', () => {
    const r = parseLabels({
      glue_http_80_host: 'ok.com',
      glue_http_81_host: 'ok.com',
      glue_http_81_weight: '999',
      glue_http_82_hots: 'typo.com',
    });
    expect(r.http.map((h) => h.port)).toEqual([80]);
    expect(r.problems).toEqual([
      { label: 'glue_http_82_hots', value: 'typo.com', reason: expect.stringContaining('unknown label') },
      { label: 'glue_http_81_weight', value: '999', reason: expect.stringContaining('0-256') },
    ]);
  });

  it('glue_http_ports restricts the ports; a bad glue_network rejects the container', () => {
    const r = parseLabels({ glue_http_ports: '80', glue_http_80_host: 'a.com', glue_http_81_host: 'b.com' });
    expect(r.http.map((h) => h.host)).toEqual(['a.com']);
    expect(r.problems[0]?.reason).toMatch(/not in glue_http_ports/);
    const bad = parseLabels({ glue_http_80_host: 'a.com', glue_network: 'x y' });
    expect(bad.rejected).toBe(true);
    expect(bad.http).toEqual([]);
  });

  it('a prefix-less route ignores strip_prefix; a missing host is reported', () => {
    expect(parseLabels({ glue_http_80_host: 'a.com', glue_http_80_strip_prefix: 'true' }).http[0]?.strip).toBe(false);
    expect(parseLabels({ glue_http_80_prefix: 'x' }).problems[0]?.reason).toMatch(/host is missing/);
  });
});

describe('label grammar: the rest of the vocabulary', () => {
  it('ports, flags and network names', () => {
    expect(parsePort('1')).toEqual({ ok: true, value: 1 });
    expect(parsePort('65535')).toEqual({ ok: true, value: 65535 });
    for (const bad of ['0', '65536', '080', ' 80', '8o', '']) expect(parsePort(bad).ok, bad).toBe(false);
    for (const yes of ['1', 'true', 'YES', 'on']) expect(parseFlag(yes)).toEqual({ ok: true, value: true });
    for (const no of ['0', 'false', 'No', 'off', '']) expect(parseFlag(no)).toEqual({ ok: true, value: false });
    expect(parseFlag('\u212A').ok).toBe(false);
    expect(parseFlag('maybe')).toEqual({ ok: false, reason: expect.stringContaining('is not a flag') });
    expect(parseNetworkName('back_net.1')).toEqual({ ok: true, value: 'back_net.1' });
    for (const bad of ['', '-x', 'a b', 'a/b']) expect(parseNetworkName(bad).ok, bad).toBe(false);
  });

  it('TCP labels: a missing or bad listen port is reported, the port dropped', () => {
    const r = parseLabels({ glue_tcp_5432_weight: '3', glue_tcp_6379_port: '99999', glue_tcp_22_port: '2222' });
    expect(r.tcp).toEqual([{ frontendPort: 2222, port: 22, weight: 100 }]);
    expect(r.problems.map((p) => p.label)).toEqual(['glue_tcp_5432_weight', 'glue_tcp_6379_port']);
    expect(r.problems[0]?.reason).toMatch(/glue_tcp_5432_port is missing/);
  });

  it('a port outside 1-65535 in a label name is an unknown label', () => {
    const r = parseLabels({ glue_http_99999_host: 'x.example.com', glue_http_80_host: 'ok.example.com' });
    expect(r.http.map((h) => h.port)).toEqual([80]);
    expect(r.problems).toEqual([
      { label: 'glue_http_99999_host', value: 'x.example.com', reason: expect.stringMatching(/not 1-65535/) },
    ]);
  });

  it('no labels, other labels: nothing', () => {
    expect(parseLabels(undefined)).toEqual({
      http: [],
      tcp: [],
      udp: [],
      network: undefined,
      problems: [],
      rejected: false,
    });
    expect(parseLabels({ 'com.example.x': 'y' }).problems).toEqual([]);
  });

  it('one sentence for a refused label, whichever handler logs it', () => {
    const r = parseLabels({ glue_http_80_host: 'ok.com', glue_http_80_weight: '999' });
    expect(r.problems[0] && describeLabelProblem('web1', r.problems[0])).toBe(
      'container web1: label glue_http_80_weight="999" is not a weight (an integer 0-256)',
    );
    expect(['glue_network', 'glue_http_80_host', 'glue_tcp_1_port'].every(isGlueLabel)).toBe(true);
    expect(['glue', 'glue_networks', 'x_glue_http_80_host'].some(isGlueLabel)).toBe(false);
  });
});

describe('label grammar (property)', () => {
  const nasty = fc.constantFrom(
    '\n',
    ' ',
    '\t',
    '#',
    '"',
    "'",
    '\\',
    '%',
    '$',
    ';',
    '/',
    '.',
    '-',
    ':',
    ',',
    '@',
    '*',
    'é',
    '\u0000',
    'a',
    'B',
    '1',
    '0',
    '_',
    '~',
  );
  const value = fc.oneof(
    fc.string({ unit: nasty, maxLength: 16 }),
    fc.constantFrom('a.example.com', 'x/y', '/', '7', '256', 'on', 'net1'),
  );
  const key = fc.oneof(
    fc
      .tuple(
        fc.constantFrom('80', '8080', '0', '99999', 'x'),
        fc.constantFrom('host', 'prefix', 'strip_prefix', 'weight', 'hots'),
      )
      .map(([p, k]) => `glue_http_${p}_${k}`),
    fc.tuple(fc.constantFrom('5432', '22'), fc.constantFrom('port', 'weight')).map(([p, k]) => `glue_tcp_${p}_${k}`),
    fc.constantFrom('glue_network', 'glue_http_ports', 'other'),
  );
  it('a glue label key in another case is reported, not ignored silently', () => {
    const r = parseLabels({
      GLUE_HTTP_80_HOST: 'a.example.com',
      Glue_Network: 'net1',
      glue_http_81_host: 'b.example.com',
    });
    expect(r.http.map((h) => h.host)).toEqual(['b.example.com']);
    expect(r.problems).toEqual([
      {
        label: 'GLUE_HTTP_80_HOST',
        value: 'a.example.com',
        reason: 'label keys are lower-case: write glue_http_80_host; this label is ignored',
      },
      {
        label: 'Glue_Network',
        value: 'net1',
        reason: 'label keys are lower-case: write glue_network; this label is ignored',
      },
    ]);
    expect(hasRouteLabels({ GLUE_TCP_22_PORT: '2222' })).toBe(true);
    expect(hasRouteLabels({ glue_ovs_vlan: '7', other: 'x' })).toBe(false);
  });
  it('whatever the labels, what comes out is in the safe shapes, and every dropped label is reported', () => {
    fc.assert(
      fc.property(fc.dictionary(key, value, { maxKeys: 8 }), (labels) => {
        const r = parseLabels(labels);
        for (const h of r.http) {
          expect(h.host).toMatch(/^[a-z0-9.-]{1,253}$/);
          expect(h.prefix).toMatch(/^(\/[A-Za-z0-9._~-]+)*$/);
          expect(h.port >= 1 && h.port <= 65535 && h.weight >= 0 && h.weight <= 256).toBe(true);
          expect(h.strip && h.prefix === '').toBe(false);
        }
        for (const t of r.tcp)
          expect(t.frontendPort >= 1 && t.frontendPort <= 65535 && t.weight >= 0 && t.weight <= 256).toBe(true);
        if (r.rejected) expect(r.http.length + r.tcp.length).toBe(0);
        for (const p of r.problems) {
          expect(isGlueLabel(p.label)).toBe(true);
          expect(describeLabelProblem('c', p)).toContain(p.label);
        }
        // Nothing is silently dropped: a glue_http host label that gives no route has a problem (or a problem elsewhere on its port).
        for (const [k, v] of Object.entries(labels)) {
          const m = /^glue_http_(\d+)_host$/.exec(k);
          if (!m || r.http.some((h) => h.port === Number(m[1]))) continue;
          expect(r.problems.length, `${k}=${JSON.stringify(v)}`).toBeGreaterThan(0);
        }
      }),
      { numRuns: 500 },
    );
  });
});
