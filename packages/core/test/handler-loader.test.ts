import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fakeAgent } from '../src/fake-agent.js';
import { GlueError, IniDocument, type HandlerConfig } from '../src/index.js';
import { validateHandlerIni } from '../src/config-loader.js';
import { dockerEndpoint } from '../src/docker-connect.js';
import { loadHandlers, parseClassSpec } from '../src/handler-loader.js';

const dir = mkdtempSync(join(tmpdir(), 'glue-loader-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function config(className: string, params = ''): HandlerConfig {
  const file = join(dir, `${Math.random().toString(36).slice(2)}.ini`);
  const text = `[handler]\nclass=${className}\nevents=start\n\n[params]\n${params}`;
  writeFileSync(file, text);
  const { config: c, problems } = validateHandlerIni(new IniDocument(file, text));
  expect(problems).toEqual([]);
  return c as HandlerConfig;
}

writeFileSync(
  join(dir, 'handlers.mjs'),
  `export class Good { constructor(agent, iniFile, ini) { this.file = iniFile; this.x = ini.get('params', 'x'); } handle() {} }
export class Picky { constructor(agent, iniFile, ini) { const e = new Error('bad'); throw e; } handle() {} }
export const NotAClass = { handle() {} };
export default class Default { handle() {} }
// A ParamError from another copy of @glue/core: recognised by code and fields, not instanceof.
export class ThreeBad { constructor() { throw Object.assign(new Error('lb.ini [params] mode: a'), { code: 'INVALID_PARAM', key: 'mode', reason: 'a', problems: [{ key: 'mode', reason: 'a' }, { key: 'http-bind', reason: 'b' }, { key: 'colour', reason: 'c' }] }); } handle() {} }
`,
);

describe('parseClassSpec', () => {
  it('maps the original dotted names', () => {
    expect(parseClassSpec('DockerGlue.handlers.lb.HAProxyHandler')).toEqual({
      module: '@glue/handler-haproxy',
      exportName: 'HAProxyHandler',
      isFile: false,
    });
    expect(parseClassSpec('DockerGlue.handlers.publishers.distconfig.Publisher').module).toBe('@glue/publisher-etcd');
    expect(parseClassSpec('./x.js')).toEqual({ module: './x.js', exportName: 'default', isFile: true });
  });
});

describe('loadHandlers', () => {
  it('constructs a class from a relative file with (agent, iniFile, ini), and a default export', async () => {
    const c = config('./handlers.mjs#Good', 'x=42\n');
    const { handlers, problems } = await loadHandlers([c, config('./handlers.mjs')], fakeAgent());
    expect(problems).toEqual([]);
    expect(handlers[0]?.instance).toMatchObject({ file: c.file, x: '42' });
    expect(handlers).toHaveLength(2);
  });

  it('reports every failure at once, naming the INI file and what was wrong', async () => {
    const configs = [
      config('./handlers.mjs#Missing'),
      config('./handlers.mjs#NotAClass'),
      config('./nope.mjs#X'),
      config('@glue/not-installed#X'),
      config('./handlers.mjs#Picky'),
    ];
    const { handlers, problems } = await loadHandlers(configs, fakeAgent());
    expect(handlers).toEqual([]);
    const messages = problems.map((p) => p.message);
    expect(messages[0]).toMatch(/has no export "Missing" \(it exports: .*Good/);
    expect(messages[1]).toMatch(/is not a handler class/);
    expect(messages[2]).toMatch(/nope\.mjs does not exist/);
    expect(messages[3]).toMatch(/package "@glue\/not-installed" is not installed/);
    expect(messages[4]).toMatch(/cannot start: bad/);
    expect(problems.map((p) => p.file)).toEqual(configs.map((c) => c.file));
    expect(problems[0]?.line).toBe(2);
  });

  it('a ParamError with three problems is three lines, each with its key and line', async () => {
    const c = config('./handlers.mjs#ThreeBad', 'mode=magic\nhttp-bind=nope\ncolour=blue\n');
    const { problems } = await loadHandlers([c], fakeAgent());
    expect(problems.map((p) => [p.key, p.line, p.message])).toEqual([
      ['mode', 6, 'a'],
      ['http-bind', 7, 'b'],
      ['colour', 8, 'c'],
    ]);
  });

  it('skips disabled handlers without loading them', async () => {
    const c = { ...config('./nope.mjs#X'), enabled: false };
    expect(await loadHandlers([c], fakeAgent())).toEqual({ handlers: [], problems: [] });
  });
});

describe('dockerEndpoint', () => {
  it('reads --docker-url, DOCKER_HOST, and the default socket', () => {
    expect(dockerEndpoint('unix:///run/d.sock', {}).options).toEqual({ socketPath: '/run/d.sock' });
    expect(dockerEndpoint(undefined, { DOCKER_HOST: 'tcp://127.0.0.1:2375' })).toMatchObject({
      address: 'tcp://127.0.0.1:2375',
      options: { host: '127.0.0.1', port: 2375, protocol: 'http' },
    });
    expect(dockerEndpoint(undefined, {}).address).toBe('unix:///var/run/docker.sock');
  });

  it('a bad address or unreadable TLS files is a GlueError ENGINE_CONFIG naming the input', () => {
    const thrown = (f: () => unknown): GlueError => {
      try {
        f();
      } catch (err) {
        return err as GlueError;
      }
      throw new Error('did not throw');
    };
    const scheme = thrown(() => dockerEndpoint('ftp://x', {}));
    expect(scheme).toBeInstanceOf(GlueError);
    expect(scheme).toMatchObject({ code: 'ENGINE_CONFIG' });
    expect(scheme.message).toMatch(/"ftp:\/\/x" \(--docker-url\): unsupported scheme ftp/);
    expect(thrown(() => dockerEndpoint(undefined, { DOCKER_HOST: 'tcp://[bad' })).message).toMatch(
      /\(DOCKER_HOST\): not a URL/,
    );
    const tls = thrown(() =>
      dockerEndpoint('tcp://127.0.0.1:2376', { DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: '/nonexistent' }),
    );
    expect(tls).toMatchObject({ code: 'ENGINE_CONFIG' });
    expect(tls.message).toMatch(/DOCKER_TLS_VERIFY is set.*\/nonexistent\/ca\.pem: no such file.*DOCKER_CERT_PATH/);
  });
});
