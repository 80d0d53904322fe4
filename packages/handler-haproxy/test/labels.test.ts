import { describe, expect, it } from 'vitest';
import { fakeContainer } from '@glue/core/contract';
import { chooseAddress, rotationReason } from '@glue/core';
import { buildModel, dockerCandidates, structureKey } from '../src/model.js';
import { parseHaproxyParams } from '../src/options.js';

describe('model', () => {
  const c = (name: string, labels: Record<string, string>, extra: Parameters<typeof fakeContainer>[0] = {}) =>
    fakeContainer({ name, ip: `172.17.0.${name.length + 1}`, labels, ...extra });

  it('groups servers by host+prefix, sorts longest prefix first, keeps names stable', () => {
    const { model } = buildModel([
      c('os-id1', { glue_http_80_host: 'openstack.example.com', glue_http_80_prefix: 'identity/keystone' }),
      c('os-ui1', { glue_http_80_host: 'openstack.example.com', glue_http_80_prefix: 'dashboard/horizon' }),
      c('os-root', { glue_http_80_host: 'openstack.example.com' }),
      c('wp1', { glue_http_80_host: 'wp1.example.com' }),
      c('wp1b', { glue_http_80_host: 'wp1.example.com', glue_http_80_weight: '50' }),
    ]);
    expect(model.http.map((b) => `${b.host}${b.prefix}`)).toEqual([
      'openstack.example.com/dashboard/horizon',
      'openstack.example.com/identity/keystone',
      'openstack.example.com',
      'wp1.example.com',
    ]);
    expect(model.http[3]?.servers.map((s) => `${s.name}=${s.weight}`)).toEqual(['wp1:80=100', 'wp1b:80=50']);
    expect(model.http[0]?.name).toMatch(/^http_openstack\.example\.com_[0-9a-f]{8}$/);
  });

  it('strip_prefix conflict: the container running longest decides, a newcomer is refused whatever its name', () => {
    const serving = c('zz-old', {
      glue_http_80_host: 'a.com',
      glue_http_80_prefix: 'api',
      glue_http_80_strip_prefix: '1',
    });
    const newcomer = c('aa-new', { glue_http_80_host: 'a.com', glue_http_80_prefix: 'api' });
    (serving.State as { StartedAt?: string }).StartedAt = '2026-12-01T10:00:00.5Z';
    (newcomer.State as { StartedAt?: string }).StartedAt = '2026-12-01T11:00:00.123456789Z';
    const { model, notes } = buildModel([newcomer, serving]);
    expect(model.http).toHaveLength(1);
    expect(model.http[0]?.strip).toBe(true);
    expect(model.http[0]?.servers.map((s) => s.containerName)).toEqual(['zz-old']);
    const refused = notes.find((n) => n.containerName === 'aa-new');
    expect(refused?.problems).toEqual([
      {
        label: 'glue_http_80_strip_prefix',
        value: 'false',
        reason:
          'a.com/api is already served with prefix stripping by zz-old, which has been running longer; this route is dropped',
      },
    ]);
  });

  it('HTTPS is decided per host: every route of it agrees with the container running longest, or is dropped', () => {
    const old = c('zz-old', { glue_http_80_host: 'a.com', glue_http_80_redirect_https: 'yes' });
    const api = c('api', {
      glue_http_80_host: 'a.com',
      glue_http_80_prefix: 'api',
      glue_http_80_redirect_https: 'yes',
    });
    const plain = c('aa-plain', { glue_http_80_host: 'a.com', glue_http_80_prefix: 'v2' });
    const hsts = c('hs', { glue_http_80_host: 'a.com', glue_http_80_prefix: 'v3', glue_http_80_tls: 'yes' });
    (old.State as { StartedAt?: string }).StartedAt = '2026-12-01T10:00:00Z';
    for (const x of [api, plain, hsts]) (x.State as { StartedAt?: string }).StartedAt = '2026-12-01T11:00:00Z';
    const { model, notes } = buildModel([plain, hsts, api, old]);
    expect(model.tls).toEqual([{ host: 'a.com', redirect: true, hsts: false }]);
    expect(model.http.map((b) => `${b.host}${b.prefix}`)).toEqual(['a.com/api', 'a.com']);
    expect(notes.find((n) => n.containerName === 'aa-plain')?.problems).toEqual([
      {
        label: 'glue_http_80_tls',
        value: 'false',
        reason:
          'a.com is already served over HTTPS with a redirect from HTTP by zz-old, which has been running longer (every route of a host is served the same way)',
      },
    ]);
    expect(notes.find((n) => n.containerName === 'hs')?.problems[0]?.label).toBe('glue_http_80_redirect_https');
    // No HTTPS host: no tls key at all (models of plain-HTTP set-ups are unchanged).
    expect(buildModel([c('p', { glue_http_80_host: 'p.com' })]).model.tls).toBeUndefined();
  });

  it('out of rotation: stopped, paused, unhealthy, starting; no address', () => {
    const labels = { glue_http_80_host: 'a.com' };
    const paused = c('p', labels);
    (paused.State as { Paused: boolean }).Paused = true;
    expect(rotationReason(c('s', labels, { running: false }))).toBe('not running');
    expect(rotationReason(paused)).toBe('paused');
    expect(rotationReason(c('u', labels, { health: 'unhealthy' }))).toMatch(/unhealthy/);
    expect(rotationReason(c('st', labels, { health: 'starting' }))).toMatch(/starting/);
    expect(rotationReason(c('h', labels, { health: 'healthy' }))).toBeUndefined();
    const { model, notes } = buildModel([
      c('h', labels, { health: 'healthy' }),
      c('u', labels, { health: 'unhealthy' }),
      fakeContainer({ name: 'noip', labels }),
    ]);
    expect(model.http[0]?.servers.map((s) => s.containerName)).toEqual(['h']);
    expect(notes.find((n) => n.containerName === 'noip')?.reason).toMatch(/no IP address/);
  });

  it('chooses the network: param/label, default bridge, or says why not', () => {
    const info = c('n', {});
    (info.NetworkSettings as unknown as { Networks: Record<string, { IPAddress: string }> }).Networks = {
      bridge: { IPAddress: '172.17.0.9' },
      back: { IPAddress: '10.0.0.5' },
    };
    expect(chooseAddress(info, undefined)).toMatchObject({ network: 'bridge', ip: '172.17.0.9' });
    expect(chooseAddress(info, 'back')).toMatchObject({ network: 'back', ip: '10.0.0.5' });
    expect(chooseAddress(info, 'front')).toEqual({ error: expect.stringContaining('no address on network "front"') });
  });

  it('TCP: frontend ports inside the allowed range and not the HTTP port', () => {
    const { model, notes } = buildModel(
      [
        c('db1', { glue_tcp_5432_port: '15432' }),
        c('db2', { glue_tcp_5432_port: '15432', glue_tcp_5432_weight: '10' }),
        c('ssh', { glue_tcp_22_port: '22' }),
        c('web', { glue_tcp_80_port: '8080' }),
      ],
      { tcpPorts: { min: 1024, max: 65535 }, reservedPorts: [8080] },
    );
    expect(model.tcp.map((s) => `${s.name}:${s.servers.map((x) => x.name).join(',')}`)).toEqual([
      'tcp_15432:db1:5432,db2:5432',
    ]);
    expect(notes.find((n) => n.containerName === 'ssh')?.problems[0]?.reason).toMatch(/outside the allowed range/);
    expect(notes.find((n) => n.containerName === 'web')?.problems[0]?.reason).toMatch(/HTTP frontend/);
  });

  it('structure ignores servers: joining an existing backend is not structural', () => {
    const a = buildModel([c('a', { glue_http_80_host: 'x.com' })]).model;
    const b = buildModel([c('a', { glue_http_80_host: 'x.com' }), c('b', { glue_http_80_host: 'x.com' })]).model;
    const d = buildModel([c('a', { glue_http_80_host: 'x.com' }), c('b', { glue_http_80_host: 'y.com' })]).model;
    expect(structureKey(a)).toBe(structureKey(b));
    expect(structureKey(a)).not.toBe(structureKey(d));
  });
});

describe('tcp-ports=none', () => {
  it('gives glue_tcp_* labels away: neither routed nor reported; HTTP routes stay', () => {
    const c = fakeContainer({
      name: 'both',
      ip: '10.0.0.2',
      labels: { glue_http_80_host: 'a.example.com', glue_tcp_5432_port: '15432', glue_tcp_22_port: 'x' },
    });
    const mine = dockerCandidates([c]);
    expect(mine.candidates[0]?.tcp).toHaveLength(1);
    expect(mine.notes[0]?.problems.map((p) => p.label)).toEqual(['glue_tcp_22_port']);
    const given = dockerCandidates([c], { tcp: false });
    expect(given.candidates[0]?.tcp).toEqual([]);
    expect(given.candidates[0]?.http).toHaveLength(1);
    expect(given.notes[0]?.problems).toEqual([]);
    expect(parseHaproxyParams('lb', { 'tcp-ports': 'none' }, '/tmp').tcp).toBe(false);
    expect(parseHaproxyParams('lb', {}, '/tmp').tcp).toBe(true);
  });
});
