import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGlue, createLogger, type Glue, type HandlerRun } from '@glue/core';
import { startDockerd, tempDir, waitFor, type DockerEngine } from '@glue/testkit';

const RECORDER = `#!/bin/sh
# args: INI_PATH EVENT CONTAINER_ID, as the original called its scripts
printf '%s|%s|%s|%s|%s|%s|%s\\n' "$1" "$2" "$3" "$GLUE_EVENT" "$GLUE_CONTAINER_ID" "$GLUE_CONTAINER_NAME" "$GLUE_INI" >> "$(dirname "$0")/calls.log"
echo "said on stdout for $2"
`;

describe('ScriptHandler on a real engine', () => {
  let engine: DockerEngine;
  let tmp: { path: string; cleanup: () => Promise<void> };
  let glue: Glue | undefined;

  beforeAll(async () => {
    engine = await startDockerd();
    tmp = await tempDir('glue-exec-');
  });
  afterAll(async () => {
    await glue?.stop();
    await engine?.stop();
    await tmp?.cleanup();
  });

  it('calls the script as `script INI_PATH EVENT CONTAINER_ID` with the GLUE_* environment', async () => {
    const conf = join(tmp.path, 'docker-glue.d');
    const scripts = join(tmp.path, 'handler-scripts');
    mkdirSync(conf);
    mkdirSync(scripts);
    writeFileSync(join(scripts, 'record.sh'), RECORDER);
    chmodSync(join(scripts, 'record.sh'), 0o755);
    const ini = join(conf, 'record.ini');
    writeFileSync(
      ini,
      '[handler]\nclass=DockerGlue.handlers.exec.ScriptHandler\nevents=start,die,none\n[params]\nscript=record.sh\n',
    );
    const runs: HandlerRun[] = [];
    glue = createGlue({
      configDirs: [conf],
      dockerUrl: engine.url,
      logger: createLogger({ level: 'silent' }),
      resolveFrom: [import.meta.url],
    });
    glue.on('handler', (r) => runs.push(r));
    await glue.start();
    const c = await engine.run({ name: 'scripted' });
    await engine.cli(['stop', '-t', '1', c.id]);
    const log = join(scripts, 'calls.log');
    const lines = await waitFor(
      () => {
        if (!existsSync(log)) return undefined;
        const l = readFileSync(log, 'utf8').trim().split('\n');
        return l.length >= 3 ? l : undefined;
      },
      { timeoutMs: 20_000, what: 'three script calls' },
    );
    expect(lines[0]).toBe(`${ini}|none||none|||${ini}`);
    expect(lines[1]).toBe(`${ini}|start|${c.id}|start|${c.id}|scripted|${ini}`);
    expect(lines[2]).toBe(`${ini}|die|${c.id}|die|${c.id}|scripted|${ini}`);
    expect(runs.every((r) => r.ok)).toBe(true);
  });

  it('a script that overruns its timeout is killed and later events still run', async () => {
    await glue?.stop();
    const conf = join(tmp.path, 'slow.d');
    mkdirSync(conf);
    const marker = join(tmp.path, 'slow-child-alive');
    writeFileSync(
      join(conf, 'slow.sh'),
      `#!/bin/sh\nif [ "$2" = start ]; then (sleep 5; touch ${marker}) & sleep 30; fi\necho "$2 $3" >> ${join(tmp.path, 'slow.log')}\n`,
    );
    chmodSync(join(conf, 'slow.sh'), 0o755);
    writeFileSync(
      join(conf, 'slow.ini'),
      '[handler]\nclass=@glue/handler-exec#ScriptHandler\nevents=start,die\n[params]\nscript=slow.sh\ntimeout=1\n',
    );
    const runs: HandlerRun[] = [];
    glue = createGlue({
      configDirs: [conf],
      dockerUrl: engine.url,
      logger: createLogger({ level: 'silent' }),
      resolveFrom: [import.meta.url],
    });
    glue.on('handler', (r) => runs.push(r));
    await glue.start();
    const c = await engine.run({ name: 'slowpoke' });
    await engine.cli(['stop', '-t', '1', c.id]);
    await waitFor(() => runs.some((r) => r.event === 'die' && r.containerId === c.id), {
      timeoutMs: 20_000,
      what: 'the die run',
    });
    const start = runs.find((r) => r.event === 'start' && r.containerId === c.id);
    expect(start?.ok).toBe(false);
    expect(String(start?.error)).toMatch(/timed out|timeout/i);
    expect(runs.find((r) => r.event === 'die' && r.containerId === c.id)?.ok).toBe(true);
    await new Promise((r) => setTimeout(r, 5_500));
    expect(existsSync(marker)).toBe(false); // the script's background child died with it
  });

  it("a [params] timeout longer than Glue's [handler] timeout wins: the script is not cut off at the shorter bound", async () => {
    await glue?.stop();
    const conf = join(tmp.path, 'long.d');
    mkdirSync(conf);
    const out = join(tmp.path, 'long.log');
    writeFileSync(join(conf, 'long.sh'), `#!/bin/sh\nsleep 1.5\necho "$2 $3" >> ${out}\n`);
    chmodSync(join(conf, 'long.sh'), 0o755);
    writeFileSync(
      join(conf, 'long.ini'),
      '[handler]\nclass=@glue/handler-exec#ScriptHandler\nevents=start\ntimeout=0.5\n[params]\nscript=long.sh\ntimeout=5\n',
    );
    const runs: HandlerRun[] = [];
    glue = createGlue({
      configDirs: [conf],
      dockerUrl: engine.url,
      logger: createLogger({ level: 'silent' }),
      resolveFrom: [import.meta.url],
    });
    glue.on('handler', (r) => runs.push(r));
    await glue.start();
    const c = await engine.run({ name: 'long-runner' });
    const run = await waitFor(() => runs.find((r) => r.event === 'start' && r.containerId === c.id), {
      timeoutMs: 20_000,
      what: 'the start run',
    });
    expect(run).toMatchObject({ ok: true, timedOut: false });
    expect(run.durationMs).toBeGreaterThanOrEqual(1_400);
    expect(readFileSync(out, 'utf8')).toContain(`start ${c.id}`);
  });
});
