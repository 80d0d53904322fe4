/**
 * SIGHUP reads the INI files again (glue -w): every file is checked first and the set switches only
 * when all are good; a bad file leaves the running handlers as they were, with every problem logged;
 * unchanged handlers keep running untouched; the new ones get a `none` run. Before, SIGHUP killed Glue
 * (exit 129). Real dockerd, the built bin, local handler modules beside the INI files.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DockerEngine, startDockerd, tempDir, waitFor } from '@glue/testkit';
import { startGlue } from './glue-process.js';

let engine: DockerEngine;
let tmp: { path: string; cleanup: () => Promise<void> };

beforeAll(async () => {
  [engine, tmp] = await Promise.all([startDockerd({ image: false }), tempDir('glue-cli-reload-')]);
});
afterAll(async () => {
  await engine?.stop();
  await tmp?.cleanup();
});

// A handler module of its own (no import of @glue/core): it records its life in $GLUE_TEST_LOG.
const RECORDER = `import { appendFileSync } from 'node:fs';
const log = (line) => appendFileSync(process.env.GLUE_TEST_LOG, line + '\\n');
export class Recorder {
  constructor(agent, file, ini) { this.tag = ini.section('params').tag; }
  start() { log('start ' + this.tag); }
  stop() { log('stop ' + this.tag); }
  handle(event) { log(this.tag + ' ' + event); }
}
`;
const ini = (tag: string): string => `[handler]\nclass=./recorder.mjs#Recorder\nevents=none\n\n[params]\ntag=${tag}\n`;

describe('SIGHUP', () => {
  it('reloads the INI files: all checked first, a bad set refused, a good one switched; then SIGTERM exits 0', async () => {
    const dir = join(tmp.path, 'glue.d');
    mkdirSync(dir);
    writeFileSync(join(dir, 'recorder.mjs'), RECORDER);
    writeFileSync(join(dir, 'a.ini'), ini('a'));
    writeFileSync(join(dir, 'b.ini'), ini('b'));
    writeFileSync(join(dir, 'd.ini'), ini('d'));
    const log = join(tmp.path, 'life.log');
    const lines = (): string[] => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : []);
    const glue = startGlue(['-w', '-c', dir, '--docker-url', engine.url, '--log-format', 'json'], {
      GLUE_TEST_LOG: log,
    });
    const msgs = (): string[] => glue.logs().map((l) => String(l['msg']));
    try {
      await waitFor(() => ['a none', 'b none', 'd none'].every((l) => lines().includes(l)), {
        timeoutMs: 20_000,
        what: 'the first none',
      });

      // A bad set: a changed, b gone, c new, and bad.ini with an unknown key: nothing may change.
      writeFileSync(join(dir, 'a.ini'), ini('a2'));
      rmSync(join(dir, 'b.ini'));
      writeFileSync(join(dir, 'c.ini'), ini('c'));
      writeFileSync(join(dir, 'bad.ini'), '[handler]\nclass=./recorder.mjs#Recorder\nevnts=none\n');
      const before = lines().length;
      glue.child.kill('SIGHUP');
      await waitFor(() => msgs().some((m) => m.startsWith('reload refused')), {
        timeoutMs: 10_000,
        what: 'the refusal',
      });
      const refusal = msgs().find((m) => m.startsWith('reload refused'))!;
      expect(refusal).toMatch(/bad\.ini.*evnts/);
      expect(lines().length).toBe(before);
      expect(glue.child.exitCode).toBeNull();

      // Fixed: the set switches.
      rmSync(join(dir, 'bad.ini'));
      glue.child.kill('SIGHUP');
      await waitFor(() => ['a2 none', 'c none'].every((l) => lines().includes(l)), {
        timeoutMs: 10_000,
        what: 'the new handlers to run none',
      });
      const after = lines().slice(before);
      expect(after).toEqual(expect.arrayContaining(['stop a', 'stop b', 'start a2', 'start c']));
      // d did not change: not stopped, not started again.
      expect(after.filter((l) => l === 'stop d' || l === 'start d')).toEqual([]);
      expect(msgs().some((m) => /reloaded the INI files: 2 started, 2 stopped, 1 unchanged/.test(m))).toBe(true);

      expect(await glue.stop()).toBe(0);
      expect(lines()).toEqual(expect.arrayContaining(['stop a2', 'stop c', 'stop d']));
    } finally {
      if (glue.child.exitCode === null) glue.child.kill('SIGKILL');
    }
  });
});
