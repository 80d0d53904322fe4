import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readMap } from './helpers.js';
import { afterAll, describe, expect, it } from 'vitest';
import { contextFor, fakeAgent, fakeContainer, handlerContractSuite, writeHandlerIni } from '@glue/core/contract';
import { ParamError } from '@glue/core';
import { HAProxyHandler } from '../src/handler.js';
import { parseShowProc } from '../src/haproxy-io.js';
import { parseHaproxyParams } from '../src/options.js';
import { DEFAULT_TEMPLATE } from '../src/template.js';

const root = mkdtempSync(join(tmpdir(), 'glue-haproxy-unit-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

handlerContractSuite({
  name: 'HAProxyHandler (file mode)',
  handlerClass: HAProxyHandler,
  params: {
    mode: 'file',
    'config-file': join(root, 'contract', 'haproxy.cfg'),
    'http-bind': '127.0.0.1:18081',
    'debounce-ms': '5',
  },
  setup: () => mkdirSync(join(root, 'contract'), { recursive: true }),
  // The fake engine still lists the container as running: the checked config routes its host to it.
  effect: async ({ handler }) => {
    await (handler as HAProxyHandler).applier.settled();
    const text = readFileSync(join(root, 'contract', 'haproxy.cfg'), 'utf8');
    expect(text).toMatch(
      /^backend glue_host_0\n {4}mode http\n {4}balance roundrobin\n {4}server contract-web:80 127\.0\.0\.1:80 weight 100$/m,
    );
    expect(readMap(join(root, 'contract', 'haproxy.hosts.map'))).toBe('contract.example.com glue_host_0\n');
  },
});

describe('params', () => {
  it('defaults: external mode, systemctl reload, *:80', () => {
    const o = parseHaproxyParams('lb.ini', {}, '/etc/docker-glue.d');
    expect(o).toMatchObject({
      mode: 'external',
      configFile: '/etc/haproxy/haproxy.cfg',
      reloadCommand: ['systemctl', 'reload', 'haproxy'],
      httpBind: '*:80',
      httpPort: 80,
      runtimeSocket: '',
      fastPath: true,
    });
  });
  it('managed mode puts its sockets beside the config file', () => {
    const o = parseHaproxyParams('lb.ini', { mode: 'managed', 'config-file': 'run/haproxy.cfg' }, '/srv/glue');
    expect(o.configFile).toBe('/srv/glue/run/haproxy.cfg');
    expect(o.runtimeSocket).toBe('/srv/glue/run/haproxy-runtime.sock');
    expect(o.masterSocket).toBe('/srv/glue/run/haproxy-master.sock');
  });
  it('https: its keys only with https-bind, acme-* only with acme-directory, each bad value named', () => {
    const o = parseHaproxyParams(
      'lb.ini',
      {
        'config-file': '/srv/lb/haproxy.cfg',
        'https-bind': '*:443',
        'acme-directory': 'https://ca.example.net/dir',
        'acme-domains': '.example.com, *.example.org, shop.example.net',
      },
      '/',
    );
    expect(o.https).toMatchObject({ bind: '*:443', port: 443, tlsDir: '/srv/lb/haproxy.tls', hstsMaxAge: 31_536_000 });
    expect(o.https?.acme).toMatchObject({
      domains: ['.example.com', '.example.org', 'shop.example.net'],
      storage: '/srv/lb/haproxy.tls/acme',
      retryMinMs: 10_000,
    });
    expect(parseHaproxyParams('lb.ini', {}, '/').https).toBeUndefined();
    const bad: Array<[Record<string, string>, RegExp]> = [
      [{ 'certs-dir': '/tmp' }, /certs-dir: only applies with https-bind/],
      [{ 'https-bind': '*:443', 'acme-email': 'a@b.c' }, /acme-email: only applies with acme-directory/],
      [{ 'https-bind': '*:80' }, /https-bind: port 80 is already http-bind's/],
      [{ 'https-bind': '*:443', 'acme-directory': 'https://ca/dir' }, /acme-domains: is required/],
      [
        { 'https-bind': '*:443', 'acme-directory': 'http://ca/dir', 'acme-domains': 'a.com' },
        /is not an https:\/\/ URL/,
      ],
      [
        { 'https-bind': '*:443', 'acme-directory': 'https://ca/dir', 'acme-domains': '.com' },
        /every name under a top-level domain/,
      ],
      [
        { 'https-bind': '*:443', 'acme-directory': 'https://ca/dir', 'acme-domains': 'a b.com' },
        /acme-domains: "a b.com" is not a hostname/,
      ],
      [{ 'https-bind': '*:443', 'hsts-max-age': '1e9' }, /hsts-max-age: "1e9" is not a number of seconds/],
      [{ 'https-bind': '*:443', 'certs-dir': '/nonexistent-glue' }, /certs-dir: \/nonexistent-glue does not exist/],
      [
        { 'https-bind': '*:443', 'acme-directory': 'https://ca/dir', 'acme-domains': 'a.com', 'acme-eab-kid': 'k' },
        /acme-eab-kid and acme-eab-hmac-key go together/,
      ],
    ];
    for (const [params, re] of bad) expect(() => parseHaproxyParams('lb.ini', params, '/')).toThrow(re);
  });
  it('tcp-address takes *, IPv4, :: and bracketed IPv6', () => {
    for (const v of ['*', '127.0.0.1', '::', '[::1]', '[fd00::5]'])
      expect(parseHaproxyParams('lb.ini', { 'tcp-address': v }, '/').tcpAddress).toBe(v);
  });
  it('rejects bad values with the key named', () => {
    const bad: Array<[Record<string, string>, RegExp]> = [
      [{ mode: 'magic' }, /\[params\] mode: "magic" is not managed/],
      [{ 'http-bind': '0.0.0.0:80\nfrontend x' }, /http-bind/],
      [{ 'config-file': '/tmp/a b.cfg' }, /config-file: .* is not a plain path/],
      [{ 'tcp-ports': '10-1' }, /tcp-ports/],
      [{ template: '/nonexistent.njk' }, /template: \/nonexistent.njk does not exist/],
      [{ colour: 'blue' }, /colour: unknown key/],
      [
        { 'tcp-address': 'localhost' },
        /tcp-address: "localhost" is not an address \(\*, an IPv4 address, :: or a bracketed IPv6 address like \[::1\]\)/,
      ],
      [{ 'tcp-address': '300.1.1.1' }, /tcp-address: "300.1.1.1" is not an address/],
      [{ 'tcp-address': '[::1' }, /tcp-address/],
      // Found by the bad-input review: an impossible address, a directory where a file goes, a
      // socket path longer than sockaddr_un holds.
      [{ 'http-bind': '999.1.1.1:80' }, /http-bind: "999.1.1.1:80" is not ADDRESS:PORT/],
      [{ template: '/tmp' }, /template: \/tmp is a directory, not a regular file/],
      [{ 'config-file': '/tmp' }, /config-file: \/tmp is a directory; name the file Glue writes/],
      [
        { mode: 'managed', 'run-dir': `/tmp/${'d'.repeat(100)}` },
        /runtime-socket: \/tmp\/d+\/haproxy-runtime\.sock is 126 bytes; a unix socket path may have at most 107/,
      ],
      [{ 'master-socket': `/tmp/${'m'.repeat(110)}.sock` }, /master-socket: .* is 120 bytes/],
    ];
    for (const [params, re] of bad) {
      expect(() => parseHaproxyParams('lb.ini', params, '/')).toThrow(ParamError);
      expect(() => parseHaproxyParams('lb.ini', params, '/')).toThrow(re);
    }
  });
});

describe('params: every problem at once', () => {
  it('mode=magic, http-bind=nope, colour=blue: one ParamError with three problems', () => {
    let caught: unknown;
    try {
      parseHaproxyParams('lb.ini', { mode: 'magic', 'http-bind': 'nope', colour: 'blue' }, '/');
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ParamError);
    expect((caught as ParamError).problems.map((p) => p.key)).toEqual(['colour', 'mode', 'http-bind']);
  });
});

describe('show proc parsing', () => {
  it('reads master reloads, failures and workers newest first', () => {
    const text = `#<PID>          <type>          <reloads>       <uptime>        <version>
14847           master          2 [failed: 1]   0d00h00m01s     2.6.12
# workers
14900           worker          0               0d00h00m00s     2.6.12
14886           worker          1               0d00h00m01s     2.6.12
# programs
`;
    expect(parseShowProc(text)).toEqual({
      masterPid: 14847,
      reloads: 2,
      failed: 1,
      workers: [
        { pid: 14900, reloads: 0 },
        { pid: 14886, reloads: 1 },
      ],
    });
  });
});

describe('HAProxyHandler in file mode', () => {
  const dir = join(root, 'file');
  mkdirSync(dir, { recursive: true });
  const cfg = join(dir, 'haproxy.cfg');

  it('coalesces a burst into one apply, writes a checked file, leaves no temp file', async () => {
    const agent = fakeAgent();
    const ini = writeHandlerIni(dir, 'lb.ini', {
      mode: 'file',
      'config-file': cfg,
      'http-bind': '127.0.0.1:18082',
      'debounce-ms': '20',
      'max-delay-ms': '2000',
    });
    const h = new HAProxyHandler(agent, ini.path, ini);
    await h.start();
    const containers = Array.from({ length: 20 }, (_, i) =>
      fakeContainer({
        name: `web${i}`,
        ip: `172.17.0.${i + 2}`,
        labels: { glue_http_80_host: `site${i % 3}.example.com` },
      }),
    );
    for (const c of containers) agent.put(c);
    await Promise.all(containers.map((c) => h.handle('start', c.Id, contextFor(agent, 'start', c.Id))));
    expect(h.stats.applies).toBe(1);
    const text = readFileSync(cfg, 'utf8');
    expect(text.match(/^ {4}server /gm)).toHaveLength(20);
    expect(readdirSync(dir).filter((f) => f.includes('.tmp'))).toEqual([]);
    // Unchanged world: rendered again, nothing written.
    await h.handle('none', '', contextFor(agent, 'none', ''));
    expect(h.stats.skipped).toBe(1);
    await h.stop();
  });

  it('the max delay bounds a burst that never pauses', async () => {
    const agent = fakeAgent();
    const ini = writeHandlerIni(dir, 'lb2.ini', {
      mode: 'file',
      'config-file': cfg,
      'http-bind': '127.0.0.1:18082',
      'debounce-ms': '50',
      'max-delay-ms': '150',
    });
    const h = new HAProxyHandler(agent, ini.path, ini);
    await h.start();
    const c = fakeContainer({ name: 'steady', ip: '172.17.0.9', labels: { glue_http_80_host: 'steady.example.com' } });
    agent.put(c);
    const started = Date.now();
    const first = h.handle('start', c.Id, contextFor(agent, 'start', c.Id));
    let done = false;
    void first.then(() => (done = true));
    while (!done && Date.now() - started < 3000) {
      void h.handle('start', c.Id, contextFor(agent, 'start', c.Id));
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(done).toBe(true);
    await h.stop();
  });

  it("a bad user template: the error carries HAProxy's text, the old file stays, no temp file", async () => {
    const agent = fakeAgent();
    const tpl = join(dir, 'user.njk');
    writeFileSync(tpl, DEFAULT_TEMPLATE);
    const out = join(dir, 'user.cfg');
    const ini = writeHandlerIni(dir, 'lb3.ini', {
      mode: 'file',
      'config-file': out,
      template: tpl,
      'http-bind': '127.0.0.1:18083',
      'debounce-ms': '1',
    });
    const h = new HAProxyHandler(agent, ini.path, ini);
    await h.start();
    const c = fakeContainer({ name: 'a', ip: '172.17.0.2', labels: { glue_http_80_host: 'a.example.com' } });
    agent.put(c);
    await h.handle('start', c.Id, contextFor(agent, 'start', c.Id));
    const good = readFileSync(out, 'utf8');
    expect(good).toContain('server a:80 172.17.0.2:80');
    writeFileSync(tpl, 'global\n    no-such-directive {{ http.bind }}\n');
    const c2 = fakeContainer({ name: 'b', ip: '172.17.0.3', labels: { glue_http_80_host: 'b.example.com' } });
    agent.put(c2);
    await expect(h.handle('start', c2.Id, contextFor(agent, 'start', c2.Id))).rejects.toThrow(
      /haproxy -c rejected the new config.*\n.*unknown keyword 'no-such-directive'/,
    );
    expect(readFileSync(out, 'utf8')).toBe(good);
    expect(readdirSync(dir).filter((f) => f.includes('.tmp'))).toEqual([]);
    expect(existsSync(out)).toBe(true);
    await h.stop();
  });
});
