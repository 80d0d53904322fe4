import { describe, expect, it } from 'vitest';
import { main } from '../src/main.js';
import { buildProgram, EXIT, toCliOptions } from '../src/options.js';

function parse(args: string[]): Record<string, unknown> {
  const program = buildProgram();
  program.parse(args, { from: 'user' });
  return program.opts();
}

describe('glue command line', () => {
  it('reads -1 / -w, repeatable -c, --docker-url and the log options', () => {
    expect(
      toCliOptions(parse(['-w', '-c', 'a', '-c', 'b', '--docker-url', 'tcp://127.0.0.1:2375', '--log-format', 'json'])),
    ).toEqual({
      mode: 'watch',
      configDirs: ['a', 'b'],
      dockerUrl: 'tcp://127.0.0.1:2375',
      logLevel: 'info',
      logFormat: 'json',
      shutdownTimeoutMs: 10_000,
    });
    expect(toCliOptions(parse(['-1'])).mode).toBe('once');
    expect(toCliOptions(parse(['-w', '--shutdown-timeout', '2.5'])).shutdownTimeoutMs).toBe(2500);
    expect(() => toCliOptions(parse(['-w', '--shutdown-timeout', 'soon']))).toThrow(
      /--shutdown-timeout "soon" is not a number/,
    );
  });

  it('refuses no mode, both modes, and an empty --docker-url', () => {
    expect(() => toCliOptions(parse([]))).toThrow(/choose a mode/);
    expect(() => toCliOptions(parse(['-1', '-w']))).toThrow(/cannot be combined/);
    expect(() => toCliOptions(parse(['-1', '--docker-url', ' ']))).toThrow(/empty/);
  });

  it('exits 2 with usage for a bad command line, before touching any engine or config', async () => {
    let err = '';
    const stderr = (t: string): void => void (err += t);
    expect(await main(['-1', '-w'], { stderr })).toBe(EXIT.USAGE);
    expect(err).toMatch(/cannot be combined/);
    expect(err).toMatch(/Usage: glue/);
  });

  it('exits 2 naming a config dir that does not exist', async () => {
    let err = '';
    const code = await main(['-1', '-c', '/nonexistent/glue.d', '--log-level', 'silent'], {
      stderr: (t) => void (err += t),
    });
    expect(code).toBe(EXIT.USAGE);
    expect(err).toContain('/nonexistent/glue.d');
  });
});
