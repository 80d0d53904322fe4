import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBinary, startDockerd, tempDir, waitFor, type DockerEngine } from '@glue/testkit';
import { EXAMPLES, runGlue, startGlue } from './glue-process.js';

/** A unix socket that forwards to `target` while open; close() refuses connections and cuts the live ones. */
async function socketProxy(
  path: string,
  target: string,
): Promise<{ path: string; open: () => Promise<void>; close: () => Promise<void> }> {
  const live = new Set<Socket>();
  let server: Server | undefined;
  const open = async (): Promise<void> => {
    if (server) return;
    const s = createServer((client) => {
      const upstream = connect(target);
      live.add(client).add(upstream);
      const drop = (): void => {
        client.destroy();
        upstream.destroy();
        live.delete(client);
        live.delete(upstream);
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((resolve, reject) => s.once('error', reject).listen(path, resolve));
    server = s;
  };
  const close = async (): Promise<void> => {
    const s = server;
    server = undefined;
    for (const sock of live) sock.destroy();
    live.clear();
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  };
  await open();
  return { path, open, close };
}

/** Lines `container_id=[..] status=[..]` written by the original test-handler.sh. */
function recorded(log: string): { id: string; status: string; option: string }[] {
  if (!existsSync(log)) return [];
  return readFileSync(log, 'utf8')
    .split('\n')
    .map((l) => /container_id=\[(.*?)\] status=\[(.*?)\] ini_demo_option=\[(.*?)\]/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ id: m[1] ?? '', status: m[2] ?? '', option: m[3] ?? '' }));
}

function has(log: string, id: string, status: string): boolean {
  return recorded(log).some((r) => r.id === id && r.status === status);
}

/**
 * Waits for the start-up none in the script's log, then runs a container through start, stop and rm;
 * returns the statuses the script recorded for that container, in order.
 */
async function noneThenLifecycle(engine: DockerEngine, log: string, name: string): Promise<string[]> {
  await waitFor(() => has(log, '', 'none'), { timeoutMs: 20_000, what: 'the none event at start-up' });
  const c = await engine.run({ name });
  await waitFor(() => has(log, c.id, 'start'), { timeoutMs: 20_000, what: 'start recorded' });
  await engine.cli(['stop', '-t', '1', c.id]);
  await engine.cli(['rm', c.id]);
  await waitFor(() => has(log, c.id, 'destroy'), { timeoutMs: 20_000, what: 'destroy recorded' });
  return recorded(log)
    .filter((r) => r.id === c.id)
    .map((r) => r.status);
}

describe('glue CLI against a real Docker engine', () => {
  let engine: DockerEngine;
  let tmp: { path: string; cleanup: () => Promise<void> };

  beforeAll(async () => {
    requireBinary('crudini');
    engine = await startDockerd();
    tmp = await tempDir('glue-cli-');
  });
  afterAll(async () => {
    await engine?.stop();
    await tmp?.cleanup();
  });

  it('runs the original test.ini + test-handler.sh unchanged: none at start-up, then start, die, destroy with the container id', async () => {
    const log = join(tmp.path, 'original.log');
    const glue = startGlue(
      ['-w', '-c', join(EXAMPLES, 'docker-glue.d'), '--docker-url', engine.url, '--log-format', 'json'],
      { GLUE_TEST_LOG: log },
    );
    try {
      const mine = await noneThenLifecycle(engine, log, 'original-pair');
      expect(mine).toContain('die');
      expect(mine.filter((e) => ['start', 'die', 'destroy'].includes(e))).toEqual(['start', 'die', 'destroy']);
      expect(recorded(log).every((r) => r.option === 'some value')).toBe(true);
      const runs = glue
        .logs()
        .filter(
          (l) => l['handler'] === 'test.ini' && l['containerName'] !== undefined && typeof l['durationMs'] === 'number',
        );
      expect(runs.length).toBeGreaterThanOrEqual(4);
    } finally {
      expect(await glue.stop()).toBe(0);
    }
  });

  it('-1 runs the none handlers once and exits 0', async () => {
    const log = join(tmp.path, 'once.log');
    const result = await runGlue(['-1', '-c', join(EXAMPLES, 'docker-glue.d'), '--docker-url', engine.url], {
      GLUE_TEST_LOG: log,
    });
    expect(result.code).toBe(0);
    expect(recorded(log).map((r) => r.status)).toEqual(['none']);
  });

  it('keeps watching through an engine kill and restart: a container started before Glue is back, and later events, are handled', async () => {
    const log = join(tmp.path, 'restart.log');
    const survivor = await engine.run({ name: 'survivor', restartPolicy: 'always' });
    // Glue talks to the engine through a socket this test can close: while it is closed the engine is
    // up again and starts a container, so Glue can only learn of it from the replay/resync on reconnect.
    const proxy = await socketProxy(join(tmp.path, 'proxied-docker.sock'), engine.socket);
    const glue = startGlue(
      ['-w', '-c', join(EXAMPLES, 'docker-glue.d'), '--docker-url', `unix://${proxy.path}`, '--log-format', 'json'],
      { GLUE_TEST_LOG: log },
    );
    try {
      await waitFor(() => has(log, '', 'none'), { timeoutMs: 20_000, what: 'start-up none' });
      await proxy.close();
      await engine.kill();
      // While the engine is away Glue logs its retries; it must not exit.
      await waitFor(() => glue.logs().some((l) => /reconnect|unreachable|lost|retry/i.test(String(l['msg']))), {
        timeoutMs: 20_000,
        what: 'a log line about the lost engine',
      });
      expect(glue.child.exitCode).toBeNull();
      await engine.restart();
      const late = await engine.run({ name: 'while-away' });
      await waitFor(
        async () => (await engine.cli(['inspect', '-f', '{{.State.Running}}', survivor.id])).trim() === 'true',
        { timeoutMs: 30_000, what: 'the restart=always container back up' },
      );
      await new Promise((r) => setTimeout(r, 500));
      expect(has(log, late.id, 'start')).toBe(false);
      await proxy.open();
      // Both starts happened while Glue could not see the engine: handled from the replay/resync.
      await waitFor(() => has(log, late.id, 'start'), {
        timeoutMs: 45_000,
        what: 'start of the container started while Glue was away',
      });
      await waitFor(() => has(log, survivor.id, 'start'), {
        timeoutMs: 45_000,
        what: 'start of the restart=always container after the engine restart',
      });
      await engine.cli(['stop', '-t', '1', late.id]);
      await waitFor(() => has(log, late.id, 'die'), { timeoutMs: 20_000, what: 'die after the reconnect' });
      expect(recorded(log).filter((r) => r.id === late.id && r.status === 'start')).toHaveLength(1);
      expect(glue.stderr()).not.toMatch(/\n\s+at /); // never a stack trace
    } finally {
      expect(await glue.stop()).toBe(0);
      await proxy.close();
    }
  });

  it('the original dotted class name DockerGlue.handlers.exec.ScriptHandler runs test-handler.sh end to end', async () => {
    const root = join(tmp.path, 'dotted');
    mkdirSync(join(root, 'docker-glue.d'), { recursive: true });
    mkdirSync(join(root, 'handler-scripts'));
    // The seed README's test.ini: the dotted class, all + none, the demo option read back by the script with crudini.
    writeFileSync(
      join(root, 'docker-glue.d', 'test.ini'),
      '[handler]\nclass=DockerGlue.handlers.exec.ScriptHandler\nevents=all,none\nenabled=1\ntriggers-none=0\n\n[params]\nscript=test-handler.sh\ndemo-option=some value\n',
    );
    cpSync(join(EXAMPLES, 'handler-scripts', 'test-handler.sh'), join(root, 'handler-scripts', 'test-handler.sh'));
    const log = join(tmp.path, 'dotted.log');
    const glue = startGlue(
      ['-w', '-c', join(root, 'docker-glue.d'), '--docker-url', engine.url, '--log-format', 'json'],
      { GLUE_TEST_LOG: log },
    );
    try {
      const mine = await noneThenLifecycle(engine, log, 'dotted-pair');
      expect(mine.filter((e) => ['start', 'die', 'destroy'].includes(e))).toEqual(['start', 'die', 'destroy']);
      expect(recorded(log).every((r) => r.option === 'some value')).toBe(true);
    } finally {
      expect(await glue.stop()).toBe(0);
    }
  });

  it('a failing handler is logged with its file and container and does not stop the others', async () => {
    const dir = join(tmp.path, 'failing.d');
    mkdirSync(dir);
    const scripts = join(dir, 'handler-scripts');
    mkdirSync(scripts);
    writeFileSync(join(scripts, 'fail.sh'), '#!/bin/sh\necho "boom on $2" >&2\nexit 3\n');
    chmodSync(join(scripts, 'fail.sh'), 0o755);
    writeFileSync(
      join(dir, 'throwing-handler.mjs'),
      "export default class Thrower { async handle(event) { if (event !== 'none') throw new Error('thrown on purpose'); } }\n",
    );
    writeFileSync(
      join(dir, '10-fail.ini'),
      '[handler]\nclass=@glue/handler-exec#ScriptHandler\nevents=start\n[params]\nscript=handler-scripts/fail.sh\n',
    );
    writeFileSync(join(dir, '20-throw.ini'), '[handler]\nclass=./throwing-handler.mjs\nevents=all\n');
    cpSync(join(EXAMPLES, 'docker-glue.d', 'test.ini'), join(dir, '30-test.ini'));
    cpSync(join(EXAMPLES, 'handler-scripts', 'test-handler.sh'), join(scripts, 'test-handler.sh'));
    const log = join(tmp.path, 'failing.log');
    const glue = startGlue(['-w', '-c', dir, '--docker-url', engine.url, '--log-format', 'json'], {
      GLUE_TEST_LOG: log,
    });
    try {
      await waitFor(() => has(log, '', 'none'), { timeoutMs: 20_000, what: 'start-up none' });
      const c = await engine.run({ name: 'victim' });
      await waitFor(() => has(log, c.id, 'start'), { timeoutMs: 20_000, what: 'the third handler still ran' });
      const errors = await waitFor(
        () => {
          const e = glue
            .logs()
            .filter((l) => l['level'] === 50 && l['event'] === 'start' && l['container'] === c.id.slice(0, 12));
          return e.length >= 2 ? e : undefined;
        },
        { timeoutMs: 10_000, what: 'two error lines' },
      );
      const byHandler = Object.fromEntries(errors.map((e) => [String(e['handler']), e]));
      expect(String(byHandler['10-fail.ini']?.['msg'])).toMatch(/exit(ed)? (with )?(code )?3/);
      expect(String(byHandler['10-fail.ini']?.['file'])).toBe(join(dir, '10-fail.ini'));
      expect(byHandler['10-fail.ini']?.['containerName']).toBe('victim');
      expect(String(byHandler['20-throw.ini']?.['msg'])).toContain('thrown on purpose');
      await engine.cli(['stop', '-t', '1', c.id]);
      await waitFor(() => has(log, c.id, 'die'), { timeoutMs: 20_000, what: 'later events still handled' });
    } finally {
      expect(await glue.stop()).toBe(0);
    }
  });

  /** A config dir with scripts that write `began EVENT ID`, sleep 2 s, then write `finished EVENT ID`. */
  function slowDir(name: string, inis: Record<string, string>): string {
    const dir = join(tmp.path, name);
    mkdirSync(join(dir, 'handler-scripts'), { recursive: true });
    writeFileSync(
      join(dir, 'handler-scripts', 'slow.sh'),
      '#!/bin/sh\necho "began $2 $3" >> "$GLUE_TEST_LOG"\nsleep 2\necho "finished $2 $3" >> "$GLUE_TEST_LOG"\n',
    );
    writeFileSync(join(dir, 'handler-scripts', 'after.sh'), '#!/bin/sh\necho "after $2 $3" >> "$GLUE_TEST_LOG"\n');
    chmodSync(join(dir, 'handler-scripts', 'slow.sh'), 0o755);
    chmodSync(join(dir, 'handler-scripts', 'after.sh'), 0o755);
    for (const [file, text] of Object.entries(inis)) writeFileSync(join(dir, file), text);
    return dir;
  }
  const lines = (log: string): string[] => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : []);

  it('SIGTERM while a script runs: the script finishes and writes its line, then exit 0', async () => {
    const dir = slowDir('graceful.d', {
      'slow.ini':
        '[handler]\nclass=@glue/handler-exec#ScriptHandler\nevents=start\n[params]\nscript=handler-scripts/slow.sh\n',
    });
    const log = join(tmp.path, 'graceful.log');
    const glue = startGlue(['-w', '-c', dir, '--docker-url', engine.url, '--log-format', 'json'], {
      GLUE_TEST_LOG: log,
    });
    try {
      await waitFor(() => glue.logs().some((l) => /watching Docker events/.test(String(l['msg']))), {
        timeoutMs: 20_000,
        what: 'glue watching',
      });
      const c = await engine.run({ name: 'graceful' });
      await waitFor(() => lines(log).includes(`began start ${c.id}`), {
        timeoutMs: 20_000,
        what: 'the script started',
      });
      const t0 = Date.now();
      glue.child.kill('SIGTERM');
      expect(await glue.exited).toBe(0);
      expect(lines(log)).toContain(`finished start ${c.id}`);
      expect(Date.now() - t0).toBeLessThan(8_000);
      expect(
        glue
          .logs()
          .some(
            (l) =>
              l['handler'] === 'slow.ini' &&
              l['level'] === 30 &&
              l['event'] === 'start' &&
              typeof l['durationMs'] === 'number',
          ),
      ).toBe(true);
    } finally {
      await glue.stop();
    }
  });

  it('a second SIGTERM stops at once: the script in flight is cancelled, the stop still completes, exit 0', async () => {
    const dir = slowDir('hurry.d', {
      'slow.ini':
        '[handler]\nclass=@glue/handler-exec#ScriptHandler\nevents=start\n[params]\nscript=handler-scripts/slow.sh\n',
    });
    const log = join(tmp.path, 'hurry.log');
    const glue = startGlue(['-w', '-c', dir, '--docker-url', engine.url, '--log-format', 'json'], {
      GLUE_TEST_LOG: log,
    });
    try {
      await waitFor(() => glue.logs().some((l) => /watching Docker events/.test(String(l['msg']))), {
        timeoutMs: 20_000,
        what: 'glue watching',
      });
      const c = await engine.run({ name: 'hurry' });
      await waitFor(() => lines(log).includes(`began start ${c.id}`), {
        timeoutMs: 20_000,
        what: 'the script started',
      });
      const t0 = Date.now();
      glue.child.kill('SIGTERM');
      await waitFor(() => glue.logs().some((l) => /^stopping/.test(String(l['msg']))), {
        timeoutMs: 5000,
        what: 'stopping',
      });
      glue.child.kill('SIGTERM');
      expect(await glue.exited).toBe(0);
      // Well before the script's 2 s: it was cancelled, not waited for.
      expect(Date.now() - t0).toBeLessThan(1500);
      expect(lines(log)).not.toContain(`finished start ${c.id}`);
      expect(
        glue.logs().some((l) => /second SIGTERM: cancelling the handler runs in flight/.test(String(l['msg']))),
      ).toBe(true);
    } finally {
      await glue.stop();
    }
  });

  it('-1 stops on SIGINT: the none handler in flight finishes, the next one does not start, exit 130', async () => {
    const dir = slowDir('once-int.d', {
      '10-slow.ini':
        '[handler]\nclass=@glue/handler-exec#ScriptHandler\nevents=none\n[params]\nscript=handler-scripts/slow.sh\n',
      '20-after.ini':
        '[handler]\nclass=@glue/handler-exec#ScriptHandler\nevents=none\n[params]\nscript=handler-scripts/after.sh\n',
    });
    const log = join(tmp.path, 'once-int.log');
    const glue = startGlue(['-1', '-c', dir, '--docker-url', engine.url, '--log-format', 'json'], {
      GLUE_TEST_LOG: log,
    });
    try {
      await waitFor(() => lines(log).some((l) => l.startsWith('began none')), {
        timeoutMs: 20_000,
        what: 'the none script started',
      });
      const t0 = Date.now();
      glue.child.kill('SIGINT');
      expect(await glue.exited).toBe(130);
      expect(Date.now() - t0).toBeLessThan(8_000);
      expect(
        lines(log)
          .filter((l) => l !== '')
          .map((l) => l.split(' ')[0]),
      ).toEqual(['began', 'finished']);
    } finally {
      await glue.stop();
    }
  });

  it('-1 stops on SIGTERM before the engine answers: exit 143 at once', async () => {
    // A TCP port that accepts but never answers: the snapshot would wait for its call timeout.
    const server = createServer(() => undefined);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const glue = startGlue(['-1', '-c', join(EXAMPLES, 'docker-glue.d'), '--docker-url', `tcp://127.0.0.1:${port}`], {
      GLUE_TEST_LOG: join(tmp.path, 'never.log'),
    });
    try {
      await new Promise((r) => setTimeout(r, 1_500));
      expect(glue.child.exitCode).toBeNull();
      const t0 = Date.now();
      glue.child.kill('SIGTERM');
      expect(await glue.exited).toBe(143);
      expect(Date.now() - t0).toBeLessThan(3_000);
    } finally {
      await glue.stop();
      server.close();
    }
  });

  it('bad INI files: every problem of every file, with file and line, exit 2, nothing runs', async () => {
    const dir = join(tmp.path, 'bad.d');
    mkdirSync(dir);
    writeFileSync(
      join(dir, 'a.ini'),
      '[handler]\nclass=@glue/handler-exec#ScriptHandler\nevents=start,explode\nenabled=maybe\n[params]\nscript=/nonexistent/script.sh\n',
    );
    writeFileSync(join(dir, 'b.ini'), '[params]\nx=1\n');
    writeFileSync(join(dir, 'c.ini'), '[handler]\nclass=@nobody/not-installed#Nope\nevents=start\n');
    const log = join(tmp.path, 'bad.log');
    const result = await runGlue(['-w', '-c', dir, '--docker-url', engine.url], { GLUE_TEST_LOG: log });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/a\.ini:3 \[handler\] events: .*explode/);
    expect(result.stderr).toMatch(/a\.ini:4 \[handler\] enabled: .*maybe/);
    expect(result.stderr).toMatch(/b\.ini.*\[handler\]/);
    // a.ini and b.ini are bad before any import: no class is imported (no code an INI names runs while
    // the configuration is known to be bad), so c.ini's class problem comes once they are fixed.
    expect(result.stderr).not.toMatch(/c\.ini/);
    expect(result.stderr).not.toMatch(/\n\s+at /);
    expect(existsSync(log)).toBe(false);
    writeFileSync(
      join(dir, 'a.ini'),
      '[handler]\nclass=@glue/handler-exec#ScriptHandler\nevents=start\n[params]\nscript=/nonexistent/script.sh\n',
    );
    writeFileSync(
      join(dir, 'b.ini'),
      '[handler]\nclass=@glue/handler-exec#ScriptHandler\nevents=start\n[params]\nscript=/bin/true\n',
    );
    const second = await runGlue(['-w', '-c', dir, '--docker-url', engine.url], { GLUE_TEST_LOG: log });
    expect(second.code).toBe(2);
    expect(second.stderr).toMatch(/a\.ini:5 \[params\] script: .*\/nonexistent\/script\.sh/);
    expect(second.stderr).toMatch(/c\.ini:2 \[handler\] class: .*@nobody\/not-installed/);
    expect(existsSync(log)).toBe(false);
  });

  it('a missing handler package or script is reported with the INI file, exit 2', async () => {
    const dir = join(tmp.path, 'missing.d');
    mkdirSync(dir);
    writeFileSync(join(dir, 'c.ini'), '[handler]\nclass=@nobody/not-installed#Nope\nevents=start\n');
    writeFileSync(
      join(dir, 'd.ini'),
      '[handler]\nclass=@glue/handler-exec#ScriptHandler\nevents=start\n[params]\nscript=/nonexistent/script.sh\n',
    );
    const result = await runGlue(['-1', '-c', dir, '--docker-url', engine.url]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/c\.ini.*@nobody\/not-installed/);
    expect(result.stderr).toMatch(/d\.ini.*\/nonexistent\/script\.sh/);
  });

  it('-1 with an unreachable engine: one line naming the address, exit 1', async () => {
    const address = `unix://${join(tmp.path, 'no-such-docker.sock')}`;
    const result = await runGlue(['-1', '-c', join(EXAMPLES, 'docker-glue.d'), '--docker-url', address]);
    expect(result.code).toBe(1);
    const lines = result.stderr
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('glue:'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(address);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it('a bad --docker-url or Docker TLS setting: one line, no stack trace, exit 2', async () => {
    const scheme = await runGlue(['-1', '-c', join(EXAMPLES, 'docker-glue.d'), '--docker-url', 'ftp://x']);
    expect(scheme.code).toBe(2);
    expect(scheme.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(/^glue: invalid Docker address "ftp:\/\/x" \(--docker-url\): unsupported scheme ftp/),
    ]);
    const home = join(tmp.path, 'no-docker-home');
    mkdirSync(home);
    // DOCKER_CERT_PATH unset: Glue looks in ~/.docker, which does not exist here.
    expect(process.env['DOCKER_CERT_PATH']).toBeUndefined();
    const tls = await runGlue(['-w', '-c', join(EXAMPLES, 'docker-glue.d'), '--docker-url', 'tcp://127.0.0.1:2376'], {
      HOME: home,
      DOCKER_TLS_VERIFY: '1',
    });
    expect(tls.code).toBe(2);
    expect(tls.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(
        /^glue: Docker TLS \(DOCKER_TLS_VERIFY is set\): cannot read .*no-docker-home\/\.docker\/ca\.pem: no such file; set DOCKER_CERT_PATH/,
      ),
    ]);
  });

  it('with neither -1 nor -w: usage on stderr, exit 2', async () => {
    const result = await runGlue([]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/-1, --once/);
    expect(result.stderr).toMatch(/-w, --watch/);
  });
});
