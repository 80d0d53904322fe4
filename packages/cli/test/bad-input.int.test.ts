/**
 * `glue` on bad input, as an operator runs it (the built bin, stderr a pipe): exit 2 with every
 * problem, never a stack trace, never a hang, never a report cut short, nothing imported or written.
 * A property test mutates the example INI files and the command line the way a careless or hostile
 * operator would. No engine is needed: a bad configuration is refused before Glue connects.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { runGlue } from './glue-process.js';

const root = mkdtempSync(join(tmpdir(), 'glue-cli-bad-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = (): string => {
  const d = join(root, `c${(n += 1)}`);
  mkdirSync(d);
  return d;
};
/** Nothing listens there: a configuration that passes ends with "engine unreachable" (exit 1). */
const NO_ENGINE = ['--docker-url', `unix://${join(root, 'no-engine.sock')}`];

/** The answer of one run must be one of these, within the bound, never with a stack trace. */
function expectOrderly(r: { code: number | null; stderr: string }, files: string[]): void {
  expect(r.stderr).not.toMatch(/unexpected error|\n\s+at [^\n]+:\d+:\d+\)?\n/);
  expect([1, 2], r.stderr).toContain(r.code);
  if (r.code === 1) expect(r.stderr).toMatch(/engine|docker/i);
  if (r.code === 2 && files.length > 0 && /invalid configuration/.test(r.stderr)) {
    // Every problem line names one of the files (or the config dir itself).
    for (const line of r.stderr.split('\n').filter((l) => l.startsWith('  '))) {
      expect(files.some((f) => line.includes(f)) || line.includes(root), line).toBe(true);
    }
  }
}

describe('glue on bad input', () => {
  it('1,000 bad files: every problem reaches a piped stderr, none cut at 64 KiB', async () => {
    const d = fresh();
    for (let i = 0; i < 1000; i++)
      writeFileSync(
        join(d, `h${String(i).padStart(4, '0')}.ini`),
        '[handler]\nclass=./nope.mjs#X\nevents=start,explode\n',
      );
    const r = await runGlue(['-1', '-c', d, ...NO_ENGINE]);
    expect(r.code).toBe(2);
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('  '));
    expect(lines).toHaveLength(1000);
    expect(lines[999]).toBe(
      `  ${join(d, 'h0999.ini')}:3 [handler] events: unknown event "explode" (known: none, all, ${lines[999]?.split('(known: none, all, ')[1]?.slice(0, -1)})`,
    );
    expect(Buffer.byteLength(r.stderr)).toBeGreaterThan(64 * 1024);
  });

  it('--docker-url with a bad %-escape or a relative unix path: one line, exit 2', async () => {
    const d = fresh();
    writeFileSync(
      join(d, 'x.ini'),
      '[handler]\nclass=@glue/handler-exec#ScriptHandler\nevents=start\n[params]\nscript=/bin/true\n',
    );
    for (const url of ['unix:///run/%ZZ.sock', 'unix://relative/x.sock', 'unix://']) {
      const r = await runGlue(['-1', '-c', d, '--docker-url', url]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/^glue: invalid Docker address/);
    }
  });

  it('property: mutated INI files and arguments exit 1 or 2 in bounded time, no stack trace, nothing imported on exit 2', async () => {
    const example = readFileSync(new URL('../../../examples/docker-glue.d/test.ini', import.meta.url), 'utf8');
    const nasty = fc.constantFrom(
      '\n',
      '\r',
      '\r\n',
      ' ',
      '\t',
      '=',
      ':',
      ';',
      '#',
      '[',
      ']',
      '"',
      "'",
      '\\',
      '\u0000',
      '\u001b[2J',
      '\u2028',
      '\ufeff',
      'é',
      '%',
      '$',
      '{',
      '}',
      'data:',
      'node:',
      '/dev/zero',
      '../',
      'x',
      'A',
      '1',
      '0',
      ',',
    );
    const mutation = fc.oneof(
      fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), text: fc.string({ unit: nasty, maxLength: 6 }) }),
      fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 8 }) }),
      fc.record({
        kind: fc.constant('line' as const),
        text: fc.constantFrom(
          'enabled',
          '=x',
          'events=,',
          'class=data:text/javascript,1#X',
          'class=node:fs#X',
          'class=./marker.mjs#X',
          '[params.sub]',
          'timeout=0.0001',
          'timeout=3000000',
          'x: y',
          '  indented=1',
          '[handler]',
          'events=start',
          '__proto__=1',
          'script=/dev/zero',
        ),
      }),
    );
    const args = fc.constantFrom<string[]>(
      [],
      ['--log-level', 'nope'],
      ['--docker-url', 'unix:///%ZZ'],
      ['--docker-url', 'ftp://x'],
      ['-w', '-1'],
      ['--log-format', 'x'],
      ['-c'],
    );
    await fc.assert(
      fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 5 }), args, async (mutations, extra) => {
        const d = fresh();
        let text = example;
        for (const m of mutations) {
          if (m.kind === 'insert')
            text = text.slice(0, m.at % (text.length + 1)) + m.text + text.slice(m.at % (text.length + 1));
          else if (m.kind === 'delete')
            text = text.slice(0, m.at % (text.length + 1)) + text.slice((m.at % (text.length + 1)) + m.length);
          else text = `${text}\n${m.text}\n`;
        }
        const file = join(d, 'test.ini');
        writeFileSync(file, text);
        writeFileSync(join(d, 'test-handler.sh'), '#!/bin/sh\ntouch "$(dirname "$1")/ran"\n', { mode: 0o755 });
        writeFileSync(
          join(d, 'marker.mjs'),
          "import { writeFileSync } from 'node:fs';\nwriteFileSync(new URL('./imported', import.meta.url), '1');\nexport class X { handle() {} }\n",
        );
        const started = Date.now();
        const r = await runGlue(['-1', '-c', d, ...NO_ENGINE, ...extra], {}, 30_000);
        expect(Date.now() - started).toBeLessThan(30_000);
        expectOrderly(r, [file]);
        if (r.code === 2) {
          expect(existsSync(join(d, 'imported')), r.stderr).toBe(false);
          expect(readdirSync(d).sort()).toEqual(['marker.mjs', 'test-handler.sh', 'test.ini']);
        }
      }),
      { numRuns: 40 },
    );
  }, 300_000);
});
