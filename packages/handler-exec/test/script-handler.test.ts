import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  captureLogger,
  contextFor,
  fakeAgent,
  fakeContainer,
  handlerContractSuite,
  writeHandlerIni,
} from '@glue/core/contract';
import { ParamError } from '@glue/core';
import { findScript, ScriptHandler } from '../src/index.js';
import { MAX_LINE_CHARS, MAX_LOGGED_LINES } from '../src/script-handler.js';

const root = mkdtempSync(join(tmpdir(), 'glue-exec-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function script(path: string, body: string, mode = 0o755): string {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, mode);
  return path;
}

describe('findScript', () => {
  const conf = join(root, 'find', 'docker-glue.d');
  mkdirSync(conf, { recursive: true });
  script(join(root, 'find', 'handler-scripts', 'beside.sh'), 'true');
  script(join(conf, 'here.sh'), 'true');
  script(join(conf, 'noexec.sh'), 'true', 0o644);

  it('looks beside the INI, then in handler-scripts/ beside the config dir', () => {
    expect(findScript('here.sh', conf)).toEqual({ path: join(conf, 'here.sh') });
    expect(findScript('beside.sh', conf)).toEqual({ path: join(root, 'find', 'handler-scripts', 'beside.sh') });
  });
  it('says where it looked, or that the file is not executable', () => {
    expect(findScript('missing.sh', conf, '/nonexistent')).toEqual({
      error: expect.stringMatching(
        /"missing.sh" not found \(looked in: .*handler-scripts\/missing.sh, \/nonexistent\/missing.sh\)/,
      ),
    });
    expect(findScript('noexec.sh', conf)).toEqual({ error: expect.stringMatching(/is not executable \(chmod \+x/) });
  });
});

describe('ScriptHandler', () => {
  const dir = join(root, 'run');
  mkdirSync(dir, { recursive: true });
  const out = join(dir, 'out.txt');
  script(
    join(dir, 'record.sh'),
    `printf '%s|' "$@" "$GLUE_EVENT" "$GLUE_CONTAINER_ID" "$GLUE_CONTAINER_NAME" "$GLUE_INI" >> ${out}; echo >> ${out}; echo hello`,
  );
  script(join(dir, 'fail.sh'), 'echo oops >&2; exit 3');
  script(join(dir, 'slow.sh'), 'sleep 5');

  it('runs script INI_PATH EVENT CONTAINER_ID with the GLUE_* environment, no shell in between', async () => {
    const agent = fakeAgent();
    const c = fakeContainer({ name: 'web; rm -rf /' });
    agent.put(c);
    const ini = writeHandlerIni(dir, 'rec.ini', { script: 'record.sh' });
    const h = new ScriptHandler(agent, ini.path, ini);
    await h.handle('start', c.Id, contextFor(agent, 'start', c.Id));
    await h.handle('none', '', contextFor(agent, 'none', ''));
    const lines = readFileSync(out, 'utf8').trim().split('\n');
    expect(lines[0]).toBe(`${ini.path}|start|${c.Id}|start|${c.Id}|web; rm -rf /|${ini.path}|`);
    expect(lines[1]).toBe(`${ini.path}|none||none|||${ini.path}|`);
  });

  it('logs output line by line as it is printed, stdout and stderr interleaved as they came', async () => {
    const { logger, lines } = captureLogger();
    const agent = fakeAgent({ logger });
    script(join(dir, 'talk.sh'), 'echo one; sleep 0.3; echo two >&2; sleep 0.3; printf three');
    const ini = writeHandlerIni(dir, 'talk.ini', { script: 'talk.sh' });
    const run = new ScriptHandler(agent, ini.path, ini).handle('none', '', contextFor(agent, 'none', ''));
    // While the script still runs (it sleeps before "two"), its first line is in the log already.
    const deadline = Date.now() + 5000;
    while (lines.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(lines.map((l) => l.msg)).toEqual(['one']);
    await run;
    expect(lines.map((l) => [l.msg, l.stream, l.level])).toEqual([
      ['one', 'stdout', 30],
      ['two', 'stderr', 40],
      ['three', 'stdout', 30],
    ]);
  });

  it('logs at most MAX_LOGGED_LINES lines of a stream per run, cuts long lines, and says how many it left out', async () => {
    const { logger, lines } = captureLogger();
    const agent = fakeAgent({ logger });
    script(
      join(dir, 'flood.sh'),
      `i=0; while [ $i -lt ${MAX_LOGGED_LINES + 5} ]; do echo "l$i"; i=$((i+1)); done; head -c ${MAX_LINE_CHARS + 10} /dev/zero | tr '\\0' x >&2`,
    );
    const ini = writeHandlerIni(dir, 'flood.ini', { script: 'flood.sh' });
    await new ScriptHandler(agent, ini.path, ini).handle('none', '', contextFor(agent, 'none', ''));
    expect(lines.filter((l) => l.stream === 'stdout')).toHaveLength(MAX_LOGGED_LINES);
    expect(lines.find((l) => l.stream === 'stderr')?.msg).toMatch(
      new RegExp(`^x{${MAX_LINE_CHARS}}… \\(${MAX_LINE_CHARS + 10} chars\\)$`),
    );
    expect(lines.map((l) => l.msg)).toContain('5 more lines of output not logged (1000 per run)');
  });

  it('a non-zero exit is an error with the code; a timeout kills the script', async () => {
    const agent = fakeAgent();
    const fail = writeHandlerIni(dir, 'fail.ini', { script: 'fail.sh' });
    await expect(
      new ScriptHandler(agent, fail.path, fail).handle('die', 'a'.repeat(64), contextFor(agent, 'die', 'a'.repeat(64))),
    ).rejects.toThrow(/fail\.sh exited with code 3/);
    const slow = writeHandlerIni(dir, 'slow.ini', { script: 'slow.sh', timeout: '0.3' });
    const started = Date.now();
    await expect(
      new ScriptHandler(agent, slow.path, slow).handle('die', '', contextFor(agent, 'none', '')),
    ).rejects.toThrow(/killed after 0.3 s/);
    expect(Date.now() - started).toBeLessThan(4000);
  });

  it('rejects a missing script or a bad timeout at load time with a ParamError naming the key', () => {
    const agent = fakeAgent();
    const none = writeHandlerIni(dir, 'none.ini', {});
    expect(() => new ScriptHandler(agent, none.path, none)).toThrow(ParamError);
    const missing = writeHandlerIni(dir, 'missing.ini', { script: 'nope.sh' });
    expect(() => new ScriptHandler(agent, missing.path, missing)).toThrow(
      /missing\.ini \[params\] script: "nope\.sh" not found/,
    );
    const long = writeHandlerIni(dir, 'long.ini', { script: 'record.sh', timeout: '90' });
    // Glue raises its own per-run bound to this: timeout + 2 s SIGTERM-to-SIGKILL grace + 1 s.
    expect(new ScriptHandler(agent, long.path, long).runTimeoutMs).toBe(93_000);
    const t = writeHandlerIni(dir, 't.ini', { script: 'record.sh', timeout: 'soon' });
    expect(() => new ScriptHandler(agent, t.path, t)).toThrow(/\[params\] timeout: "soon"/);
    // Beyond Node's timers (TimeoutOverflowWarning, then killed at once) and too short to start.
    for (const timeout of ['3000000', '0.0001', '0']) {
      const ini = writeHandlerIni(dir, `t${timeout}.ini`, { script: 'record.sh', timeout });
      expect(() => new ScriptHandler(agent, ini.path, ini)).toThrow(
        new RegExp(`timeout: "${timeout.replace('.', '\\.')}" is not a number of seconds from 0.1 to 86400`),
      );
    }
  });
});

const contractDir = join(root, 'contract');
mkdirSync(contractDir, { recursive: true });
handlerContractSuite({
  name: 'ScriptHandler',
  handlerClass: ScriptHandler,
  params: { script: join(contractDir, 'ok.sh') },
  setup: () => {
    script(join(contractDir, 'ok.sh'), `echo "$2 $3" >> ${join(contractDir, 'ran.log')}`);
    rmSync(join(contractDir, 'ran.log'), { force: true });
  },
  // docker-glue's calling convention, once per event: script INI_PATH EVENT CONTAINER_ID.
  effect: ({ container }) => {
    expect(readFileSync(join(contractDir, 'ran.log'), 'utf8')).toBe(
      `none \nstart ${container.Id}\ndie ${container.Id}\ndestroy ${container.Id}\n`,
    );
  },
});
