/**
 * The release smoke test: every publishable package is packed as `pnpm publish` would upload it and
 * published to a private registry on loopback (verdaccio, no uplink; the third-party dependencies are
 * the workspace's installed versions, published there too), then used from fresh directories the way
 * the README and docs/writing-a-handler.md tell users to: `npx @glue/cli`, `npm i -g` with a
 * third-party handler package, handler files beside an INI, and `@glue/core` embedded in a project.
 * Nothing comes from the monorepo at run time: each run resolves only what npm installed.
 */
import { mkdirSync, readFileSync, writeFileSync, existsSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type DockerEngine,
  isAlive,
  type NpmRegistry,
  pidsMentioning,
  startDockerd,
  startRegistry,
  stopPid,
  tempDir,
  waitFor,
} from '@glue/testkit';
import { packDependencies, packWorkspace, publishableDirs, ROOT, type Packed } from './release/pack.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/acme-glue-demo', import.meta.url));

let registry: NpmRegistry;
let engine: DockerEngine;
let tmp: { path: string; cleanup: () => Promise<void> };
let ours: Packed[] = [];

/** A process started by `run`: its exit code and output once it ended. */
interface Ran {
  exitCode: number | undefined;
  stdout: string;
  stderr: string;
}

/** npm, npx or a bin npm installed, seeing only the private registry; never throws. */
function run(file: string, args: readonly string[], cwd: string): ResultPromise & { done: Promise<Ran> } {
  const child = execa(file, args, {
    cwd,
    env: registry.npmEnv(),
    extendEnv: false,
    reject: false,
    timeout: 180_000,
  });
  const done = child.then((r) => ({ exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr }));
  return Object.assign(child, { done });
}

/** A fresh directory under the test's temp dir. */
function fresh(name: string, files: Record<string, string> = {}): string {
  const dir = join(tmp.path, name);
  mkdirSync(dir, { recursive: true });
  for (const [file, text] of Object.entries(files)) writeFileSync(join(dir, file), text);
  return dir;
}

const ini = (cls: string, params: string): string => `[handler]\nclass=${cls}\nevents=none\n\n[params]\n${params}`;

/** A fresh dir with a config dir whose script handler appends "EVENT CONTAINER_ID" to `out`. */
function recorder(name: string): { dir: string; conf: string; out: string } {
  const dir = fresh(name);
  const conf = join(dir, 'docker-glue.d');
  mkdirSync(conf);
  const out = join(dir, 'record');
  writeFileSync(join(conf, 'record.sh'), `#!/bin/sh\necho "$2 $3" >> ${out}\n`);
  chmodSync(join(conf, 'record.sh'), 0o755);
  writeFileSync(join(conf, 'record.ini'), ini('@glue/handler-exec#ScriptHandler', 'script=record.sh\n'));
  return { dir, conf, out };
}

/** Publishes `packs` over the HTTP API, lower versions of a name first, a few names at a time. */
async function publishAll(packs: readonly Packed[]): Promise<void> {
  const byName = new Map<string, Packed[]>();
  for (const p of packs) byName.set(p.name, [...(byName.get(p.name) ?? []), p]);
  const queue = [...byName.values()].map((list) =>
    list.sort((a, b) => a.version.localeCompare(b.version, 'en', { numeric: true })),
  );
  const worker = async (): Promise<void> => {
    for (let list = queue.pop(); list; list = queue.pop())
      for (const p of list) await registry.publish(p.tarball, p.manifest);
  };
  await Promise.all(Array.from({ length: 8 }, worker));
}

beforeAll(async () => {
  [registry, engine, tmp] = await Promise.all([
    startRegistry(),
    startDockerd({ image: false }),
    tempDir('glue-release-'),
  ]);
  const packs = fresh('packs');
  ours = await packWorkspace(packs);
  await publishAll(await packDependencies(publishableDirs(), packs));
  // Ours and the third-party fixture go through `npm publish`, as a release does.
  for (const p of ours) {
    const r = await run('npm', ['publish', p.tarball], packs).done;
    expect(r.exitCode, `npm publish ${p.name}: ${r.stderr}`).toBe(0);
  }
  const fixture = await run('npm', ['publish'], FIXTURE).done;
  expect(fixture.exitCode, String(fixture.stderr)).toBe(0);
}, 600_000);

afterAll(async () => {
  await registry?.stop();
  await engine?.stop();
  await tmp?.cleanup();
});

describe('the packed packages', () => {
  it('are the seven public ones, each with LICENSE and README, naming no private package', async () => {
    expect(ours.map((p) => p.name).sort()).toEqual([
      '@glue/cli',
      '@glue/core',
      '@glue/handler-exec',
      '@glue/handler-haproxy',
      '@glue/handler-nftables',
      '@glue/handler-ovs',
      '@glue/publisher-etcd',
    ]);
    for (const p of ours) {
      const files = (await execa('tar', ['-tzf', p.tarball])).stdout.split('\n');
      expect(files, p.name).toEqual(expect.arrayContaining(['package/LICENSE', 'package/README.md']));
      const text = JSON.stringify(p.manifest);
      expect(text, p.name).not.toMatch(/@glue\/testkit|workspace:/);
      const readme = (await execa('tar', ['-xOzf', p.tarball, 'package/README.md'])).stdout;
      // Links that leave the package do not work on a registry page.
      expect(readme.match(/\]\((\.\.\/|\/)[^)]*\)/g) ?? [], `${p.name} README`).toEqual([]);
    }
    expect(readFileSync(join(ROOT, 'LICENSE'), 'utf8')).toMatch(/MIT License/);
  });
});

describe('npx @glue/cli', () => {
  it('-h prints the usage', async () => {
    const r = await run('npx', ['--yes', '@glue/cli', '-h'], fresh('npx-help')).done;
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/-w, --watch/);
  });

  it('-1 with a config dir runs the script handler', async () => {
    const { dir, conf, out } = recorder('npx-once');
    const r = await run('npx', ['--yes', '@glue/cli', '-1', '-c', conf, '--docker-url', engine.url], dir).done;
    expect(r.exitCode, r.stderr).toBe(0);
    expect(readFileSync(out, 'utf8')).toBe('none \n');
  });

  it('-w stops when npx is sent SIGTERM or SIGHUP (no Glue left behind, watching)', async () => {
    for (const signal of ['SIGTERM', 'SIGHUP'] as const) {
      const { dir, conf, out } = recorder(`npx-${signal}`);
      const npx = run('npx', ['--yes', '@glue/cli', '-w', '-c', conf, '--docker-url', engine.url], dir);
      await waitFor(() => existsSync(out), { timeoutMs: 60_000, what: 'the none run under npx -w' });
      const glue = pidsMentioning(conf).filter((pid) => pid !== npx.pid);
      expect(glue.length, 'the glue process under npx').toBeGreaterThan(0);
      npx.kill(signal);
      await waitFor(() => glue.every((pid) => !isAlive(pid)), {
        timeoutMs: 15_000,
        what: `glue (${glue.join(', ')}) gone after ${signal} to npx`,
      }).finally(() => glue.forEach((pid) => void stopPid(pid, 'SIGKILL', 0)));
      await npx.done;
    }
  });
});

describe('npm i -g @glue/cli @glue/handler-haproxy @acme/glue-demo', () => {
  let bin: string;
  beforeAll(async () => {
    const r = await run('npm', ['i', '-g', '@glue/cli', '@glue/handler-haproxy', '@acme/glue-demo'], fresh('global'))
      .done;
    expect(r.exitCode, r.stderr).toBe(0);
    bin = registry.globalBin;
  }, 300_000);

  it('installs glue, docker-glue, glue-balancer and docker-balancer', async () => {
    for (const name of ['glue', 'docker-glue']) {
      const r = await run(join(bin, name), ['-h'], tmp.path).done;
      expect(r.exitCode, `${name}: ${r.stderr}`).toBe(0);
    }
    for (const name of ['glue-balancer', 'docker-balancer']) {
      const r = await run(join(bin, name), ['--version'], tmp.path).done;
      expect(r.exitCode, `${name}: ${r.stderr}`).toBe(0);
      expect(r.stdout.trim()).toBe('0.1.0');
    }
  });

  it('runs the third-party handler, which npm gave its own copy of @glue/core', async () => {
    // npm installs the peer inside each global package: the handler's core is not the daemon's.
    const own = join(
      registry.dir,
      'global',
      'lib',
      'node_modules',
      '@acme',
      'glue-demo',
      'node_modules',
      '@glue',
      'core',
    );
    expect(existsSync(own), own).toBe(true);
    const dir = fresh('global-run');
    const out = join(dir, 'demo.out');
    writeFileSync(join(dir, 'demo.ini'), ini('@acme/glue-demo#DemoHandler', `out=${out}\ngreeting=hi\n`));
    const r = await run(join(bin, 'glue'), ['-1', '-c', dir, '--docker-url', engine.url], dir).done;
    expect(r.exitCode, r.stderr).toBe(0);
    expect(readFileSync(out, 'utf8')).toBe('hi none \n');
  });

  it("reports the third-party handler's bad param with file, line and key: exit 2", async () => {
    const dir = fresh('global-bad', { 'demo.ini': ini('@acme/glue-demo#DemoHandler', 'out=/dev/null\ngreeting=yo\n') });
    const r = await run(join(bin, 'glue'), ['-1', '-c', dir, '--docker-url', engine.url], dir).done;
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/demo\.ini:7 \[params\] greeting: "yo" is not hello or hi/);
  });

  it('loads a .js ESM and a .cjs handler beside the INI, in a directory without node_modules', async () => {
    const dir = fresh('global-local', {
      'esm.js': `import { BaseHandler } from '@glue/core';
import { appendFileSync } from 'node:fs';
export class Esm extends BaseHandler {
  async handle(event) { appendFileSync(this.params.out, 'esm ' + event + '\\n'); }
}
`,
      'plain.cjs': `const { appendFileSync } = require('node:fs');
class Plain {
  constructor(agent, file, ini) { this.out = ini.section('params').out; }
  async handle(event) { appendFileSync(this.out, 'cjs ' + event + '\\n'); }
}
module.exports = { Plain };
`,
    });
    const out = join(dir, 'local.out');
    writeFileSync(join(dir, 'a-esm.ini'), ini('./esm.js#Esm', `out=${out}\n`));
    writeFileSync(join(dir, 'b-cjs.ini'), ini('./plain.cjs#Plain', `out=${out}\n`));
    const r = await run(join(bin, 'glue'), ['-1', '-c', dir, '--docker-url', engine.url], dir).done;
    expect(r.exitCode, r.stderr).toBe(0);
    expect(readFileSync(out, 'utf8').split('\n').sort().join('\n')).toBe('\ncjs none\nesm none');
  });
});

describe('@glue/core embedded in a fresh project', () => {
  let dir: string;
  beforeAll(async () => {
    dir = fresh('embed', { 'package.json': JSON.stringify({ name: 'embed', private: true, type: 'module' }) });
    const r = await run('npm', ['i', '@glue/core'], dir).done;
    expect(r.exitCode, r.stderr).toBe(0);
  }, 300_000);

  it('runs an inline handler against the engine (ESM)', async () => {
    writeFileSync(
      join(dir, 'main.js'),
      `import { createGlue } from '@glue/core';
const seen = [];
const glue = createGlue({ dockerUrl: process.argv[2], handlers: [{ name: 'audit', events: ['none'], handler: { handle: (e) => { seen.push(e); } } }] });
const result = await glue.runOnce();
console.log(JSON.stringify({ seen, failed: result.failed }));
`,
    );
    const r = await run('node', ['main.js', engine.url], dir).done;
    expect(r.exitCode, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ seen: ['none'], failed: 0 });
  });

  it('loads with require() (CommonJS)', async () => {
    const r = await run('node', ['-e', "const c = require('@glue/core'); console.log(typeof c.createGlue)"], dir).done;
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toBe('function');
  });

  it('type-checks against the published types', async () => {
    writeFileSync(
      join(dir, 'check.ts'),
      `import { BaseHandler, createGlue, type HandlerContext, type ContainerInspectInfo } from '@glue/core';
export class Mine extends BaseHandler {
  async handle(event: string, id: string, context: HandlerContext): Promise<void> {
    const c: ContainerInspectInfo | undefined = context.container;
    this.logger.info({ event, id, name: c?.Name }, 'seen');
  }
}
export const glue = createGlue({ handlers: [] });
`,
    );
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { strict: true, module: 'nodenext', target: 'es2022', noEmit: true, skipLibCheck: false },
        files: ['check.ts'],
      }),
    );
    const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    expect(existsSync(tsc), tsc).toBe(true);
    const r = await run('node', [tsc, '-p', 'tsconfig.json'], dir).done;
    expect(r.exitCode, r.stdout).toBe(0);
  });
});
