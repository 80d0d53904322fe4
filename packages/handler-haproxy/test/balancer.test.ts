import { describe, expect, it } from 'vitest';
import { silentLogger } from '@glue/core';
import { balancerMain, EXIT } from '../src/balancer.js';
import { PARAM_KEYS } from '../src/options.js';
import { buildBalancerProgram } from '../src/balancer.js';

const run = async (argv: string[]): Promise<{ code: number; stderr: string }> => {
  let stderr = '';
  const code = await balancerMain(argv, {
    stderr: (t) => (stderr += t),
    logger: silentLogger(),
    stopSignal: Promise.resolve('SIGTERM'),
  });
  return { code, stderr };
};

describe('glue-balancer command line', () => {
  it('--version prints the version and exits 0', async () => {
    const out: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = (t: string) => (out.push(String(t)), true);
    try {
      expect((await run(['--version'])).code).toBe(EXIT.OK);
    } finally {
      process.stdout.write = write;
    }
    expect(out.join('')).toMatch(/^\d+\.\d+\.\d+(-dev)?\n$/);
  });

  it('needs exactly one of -1 and -w', async () => {
    expect(await run([])).toEqual({
      code: EXIT.USAGE,
      stderr: expect.stringContaining('choose a mode: -1 (run once) or -w (watch)'),
    });
    expect((await run(['-1', '-w'])).code).toBe(EXIT.USAGE);
  });
  it('refuses -1 with --mode managed, unknown events and bad params, naming the flag', async () => {
    expect((await run(['-1', '--mode', 'managed'])).stderr).toMatch(/--mode managed needs -w/);
    expect((await run(['-w', '--watch-set', 'start,explode'])).stderr).toMatch(/--watch-set: unknown event explode/);
    expect((await run(['-w', '--http-bind', '80'])).stderr).toMatch(/--http-bind: "80" is not ADDRESS:PORT/);
    expect((await run(['-w', '--mode', 'sideways'])).code).toBe(EXIT.USAGE);
  });
  it('has a --flag for every [params] key, and takes them', async () => {
    const flags = new Set(buildBalancerProgram().options.map((o) => o.long));
    for (const key of PARAM_KEYS) expect(flags).toContain(`--${key}`);
    // check-timeout and reload-timeout were missing once ("unknown option").
    const r = await run([
      '-1',
      '--mode',
      'file',
      '--config-file',
      '/tmp/glue-balancer-unit.cfg',
      '--check-timeout',
      '5',
      '--reload-timeout',
      '7',
      '--docker-url',
      'unix:///nonexistent/docker.sock',
    ]);
    expect(r.stderr).not.toMatch(/unknown option/);
    expect(r.code).toBe(EXIT.FAILURE);
  });
  it('a bad number says the range', async () => {
    expect((await run(['-w', '--spare-backends', '-1'])).stderr).toMatch(
      /--spare-backends: "-1" is not a number from 0 to 10000/,
    );
    expect((await run(['-w', '--check-timeout', '0'])).stderr).toMatch(/--check-timeout: 0 is outside 1-600/);
  });
  it('-1 against an engine that is not there exits 1 with the address', async () => {
    const r = await run([
      '-1',
      '--mode',
      'file',
      '--config-file',
      '/tmp/glue-balancer-unit.cfg',
      '--docker-url',
      'unix:///nonexistent/docker.sock',
    ]);
    expect(r.code).toBe(EXIT.FAILURE);
    expect(r.stderr).toMatch(/nonexistent\/docker.sock/);
  });
});
