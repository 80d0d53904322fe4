/**
 * Handler modules beside an INI file, installed the way the docs say, loaded by the built `glue`:
 * a `.js` ESM file that imports `@glue/core` in a directory without package.json or node_modules
 * (it gets the daemon's copy through core-hooks.js; before: "Cannot find package '@glue/core'"), its
 * ParamError reported with file, line and key (the same error contract across copies), a `.cjs`
 * CommonJS handler, and a `.cjs` that requires `@glue/core` from its own node_modules (require(esm)
 * through the exports map's `default` condition; before: ERR_PACKAGE_PATH_NOT_EXPORTED).
 */
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DockerEngine, startDockerd, tempDir } from '@glue/testkit';
import { runGlue } from './glue-process.js';

let engine: DockerEngine;
let tmp: { path: string; cleanup: () => Promise<void> };
const CORE = fileURLToPath(new URL('../../core', import.meta.url));

beforeAll(async () => {
  [engine, tmp] = await Promise.all([startDockerd({ image: false }), tempDir('glue-local-handlers-')]);
});
afterAll(async () => {
  await engine?.stop();
  await tmp?.cleanup();
});

/** A config dir with `files`, run with `glue -1`; returns the exit code and stderr. */
async function once(
  name: string,
  files: Record<string, string>,
  env: Record<string, string> = {},
): Promise<{ code: number | null; stderr: string; dir: string }> {
  const dir = join(tmp.path, name);
  mkdirSync(dir, { recursive: true });
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(join(dir, file, '..'), { recursive: true });
    writeFileSync(join(dir, file), text);
  }
  const r = await runGlue(['-1', '-c', dir, '--docker-url', engine.url], env);
  return { code: r.code, stderr: r.stderr, dir };
}

const ini = (cls: string, params = ''): string => `[handler]\nclass=${cls}\nevents=none\n\n[params]\n${params}`;

describe('handler modules beside the INI file', () => {
  it('a .js ESM handler importing @glue/core, in a directory without package.json or node_modules', async () => {
    const r = await once('bare-esm', {
      'local.js': `import { BaseHandler } from '@glue/core';
import { writeFileSync } from 'node:fs';
export class Local extends BaseHandler {
  async handle(event) { writeFileSync(this.params.out, event + ' ' + this.name); }
}
`,
      'local.ini': ini('./local.js#Local', `out=${join(tmp.path, 'bare-esm.out')}\n`),
    });
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(tmp.path, 'bare-esm.out'), 'utf8')).toBe('none local.ini');
  });

  it("its ParamError (from the daemon's core) is reported with file, line and key: exit 2", async () => {
    const r = await once('bare-param', {
      'strict.js': `import { BaseHandler, ParamError } from '@glue/core';
export class Strict extends BaseHandler {
  constructor(agent, file, ini) {
    super(agent, file, ini);
    if (this.params.mode !== 'on') throw ParamError.of(file, [{ key: 'mode', reason: 'is not on' }]);
  }
  async handle() {}
}
`,
      'strict.ini': ini('./strict.js#Strict', 'mode=off\n'),
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/strict\.ini:6 \[params\] mode: is not on/);
  });

  it('a .cjs CommonJS handler', async () => {
    const out = join(tmp.path, 'cjs.out');
    const r = await once('cjs', {
      'plain.cjs': `const { writeFileSync } = require('node:fs');
class Plain {
  constructor(agent, file, ini) { this.out = ini.section('params').out; }
  async handle(event) { writeFileSync(this.out, 'cjs ' + event); }
}
module.exports = { Plain };
`,
      'plain.ini': ini('./plain.cjs#Plain', `out=${out}\n`),
    });
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(out, 'utf8')).toBe('cjs none');
  });

  it('a .cjs handler that requires @glue/core from its node_modules (require(esm))', async () => {
    const out = join(tmp.path, 'cjs-core.out');
    const dir = join(tmp.path, 'cjs-core');
    mkdirSync(join(dir, 'node_modules', '@glue'), { recursive: true });
    symlinkSync(CORE, join(dir, 'node_modules', '@glue', 'core'));
    const r = await once('cjs-core', {
      'withcore.cjs': `const { BaseHandler } = require('@glue/core');
const { writeFileSync } = require('node:fs');
class WithCore extends BaseHandler {
  async handle(event) { writeFileSync(this.params.out, 'core ' + event); }
}
module.exports = { WithCore };
`,
      'withcore.ini': ini('./withcore.cjs#WithCore', `out=${out}\n`),
    });
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(out, 'utf8')).toBe('core none');
  });

  it('a .cjs handler that requires @glue/core where none is installed: exit 2, saying what to do', async () => {
    const r = await once(
      'cjs-bare-core',
      {
        'needs.cjs': `const { BaseHandler } = require('@glue/core');
class Needs extends BaseHandler { async handle() {} }
module.exports = { Needs };
`,
        'needs.ini': ini('./needs.cjs#Needs'),
      },
      // pnpm's NODE_PATH (set for scripts such as `pnpm test`) would lend CommonJS the workspace's copy.
      { NODE_PATH: '' },
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /needs\.ini.*Cannot find module '@glue\/core'.*npm install @glue\/core. beside it, or write it as an ES module/s,
    );
  });
});
