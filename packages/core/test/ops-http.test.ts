import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { createMetrics, followTotal, parseHttpAddr, silentLogger, startOpsServer } from '../src/index.js';
import type { ReadyCheck } from '../src/index.js';

describe('createMetrics', () => {
  it('returns the existing metric for the same name, type and labels (a reloaded handler keeps its series)', () => {
    const m = createMetrics();
    const a = m.counter({ name: 'glue_demo_things_total', help: 'x', labelNames: ['result'] });
    expect(m.counter({ name: 'glue_demo_things_total', help: 'x', labelNames: ['result'] })).toBe(a);
  });

  it('refuses names off the conventions and a name reused with another type or labels', () => {
    const m = createMetrics();
    expect(() => m.counter({ name: 'demo_total', help: 'x' })).toThrow(/must match/);
    expect(() => m.counter({ name: 'glue_demo_things', help: 'x' })).toThrow(/must end in _total/);
    expect(() => m.gauge({ name: 'glue_demo', help: 'x', labelNames: ['Bad-Label'] })).toThrow(/label names/);
    m.gauge({ name: 'glue_demo_level', help: 'x' });
    expect(() => m.histogram({ name: 'glue_demo_level', help: 'x' })).toThrow(/exists as a gauge/);
    expect(() => m.gauge({ name: 'glue_demo_level', help: 'x', labelNames: ['a'] })).toThrow(/with labels \[\]/);
  });
});

describe('followTotal', () => {
  it('adds what a total kept elsewhere grew by; a total that starts over (a new handler) counts on', async () => {
    const m = createMetrics();
    const c = m.counter({ name: 'glue_demo_applies_total', help: 'x', labelNames: ['handler'] });
    const a = followTotal(c, { handler: 'a.ini' });
    a(3);
    a(3);
    a(5);
    a(1); // the stats were reset: nothing subtracted, counting goes on from there
    a(2);
    const values = (await c.get()).values;
    expect(values).toEqual([{ labels: { handler: 'a.ini' }, value: 6 }]);
  });
});

describe('parseHttpAddr', () => {
  it('takes HOST:PORT and [IPv6]:PORT', () => {
    expect(parseHttpAddr('127.0.0.1:9464')).toEqual({ host: '127.0.0.1', port: 9464 });
    expect(parseHttpAddr('[::1]:0')).toEqual({ host: '::1', port: 0 });
    expect(parseHttpAddr('localhost:80')).toEqual({ host: 'localhost', port: 80 });
  });

  it('says what is wrong with anything else', () => {
    expect(parseHttpAddr('9464')).toEqual({ problem: expect.stringMatching(/is not HOST:PORT/) });
    expect(parseHttpAddr('127.0.0.1:70000')).toEqual({ problem: expect.stringMatching(/port 70000 is not 0-65535/) });
    expect(parseHttpAddr('[nope]:1')).toEqual({ problem: expect.stringMatching(/is not HOST:PORT/) });
    expect(parseHttpAddr('[1.2.3.4]:1')).toEqual({ problem: expect.stringMatching(/not an IPv6 address/) });
    expect(parseHttpAddr('a_b:1')).toEqual({ problem: expect.stringMatching(/is not an IP address or host name/) });
  });
});

describe('startOpsServer', () => {
  it('serves /metrics, /livez and /readyz from its sources; 503 names the failing check', async () => {
    const metrics = createMetrics();
    metrics.counter({ name: 'glue_demo_things_total', help: 'Things' }).inc(2);
    let checks: ReadyCheck[] = [{ name: 'engine' }, { name: 'lb.ini' }];
    const server = await startOpsServer('127.0.0.1:0', { metrics, readiness: async () => checks }, silentLogger());
    try {
      const get = async (p: string) => {
        const r = await fetch(`${server.url}${p}`);
        return { status: r.status, body: await r.text(), type: r.headers.get('content-type') };
      };
      const m = await get('/metrics');
      expect(m.type).toMatch(/^text\/plain; version=0\.0\.4/);
      expect(m.body).toMatch(/^glue_demo_things_total 2$/m);
      expect(m.body).toMatch(/^process_resident_memory_bytes \d+/m);
      expect(await get('/readyz')).toMatchObject({ status: 200, body: 'ok\n' });
      checks = [{ name: 'engine' }, { name: 'lb.ini', problem: 'the last apply failed: haproxy -c refused it' }];
      expect(await get('/readyz')).toMatchObject({
        status: 503,
        body: '[-] lb.ini: the last apply failed: haproxy -c refused it\nnot ready\n',
      });
      expect((await get('/readyz?verbose')).body).toBe(
        '[+] engine ok\n[-] lb.ini: the last apply failed: haproxy -c refused it\nnot ready\n',
      );
      checks = [];
      expect(await get('/livez')).toMatchObject({ status: 200, body: 'ok\n' });
    } finally {
      await server.close();
    }
  });

  it('a request target URL cannot parse (GET //) gets a 404 and the server lives on', async () => {
    const metrics = createMetrics();
    const server = await startOpsServer('127.0.0.1:0', { metrics, readiness: async () => [] }, silentLogger());
    try {
      const port = Number(new URL(server.url).port);
      for (const target of ['//', '//x:y@', '/%zz', 'http://[']) {
        const reply = await new Promise<string>((resolve, reject) => {
          const socket = connect(port, '127.0.0.1', () =>
            socket.end(`GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`),
          );
          let data = '';
          socket.on('data', (d: Buffer) => (data += d.toString()));
          socket.on('end', () => resolve(data));
          socket.on('error', reject);
        });
        expect(reply, target).toMatch(/^HTTP\/1\.1 (404|400) /);
      }
      expect((await fetch(`${server.url}/livez`)).status).toBe(200);
    } finally {
      await server.close();
    }
  });

  it('refuses a bad address and a port in use, naming --http-addr', async () => {
    const metrics = createMetrics();
    const sources = { metrics, readiness: async () => [] };
    await expect(startOpsServer('nope', sources, silentLogger())).rejects.toThrow(
      /--http-addr: "nope" is not HOST:PORT/,
    );
    const first = await startOpsServer('127.0.0.1:0', sources, silentLogger());
    try {
      const taken = first.url.replace('http://', '');
      await expect(startOpsServer(taken, sources, silentLogger())).rejects.toThrow(
        new RegExp(`--http-addr ${taken}: cannot listen: .*EADDRINUSE`),
      );
    } finally {
      await first.close();
    }
  });
});
