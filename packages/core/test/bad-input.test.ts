/**
 * Bad configuration never hangs, crashes, runs code or passes silently (issue: bad-input). Each case
 * the issue found is here: files that are not regular files, sizes, the quadratic duplicate check,
 * class= values that would run inline code, modules that exit or never finish loading, what the
 * `ini` package read differently from ConfigParser, BOM and CR line ends, numbers, Docker addresses.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fakeAgent } from '../src/fake-agent.js';
import {
  ConfigError,
  createGlue,
  formatProblem,
  GlueError,
  IniDocument,
  quote,
  readHandlerConfigs,
  type HandlerConfig,
} from '../src/index.js';
import { validateHandlerIni } from '../src/config-loader.js';
import { dockerEndpoint } from '../src/docker-connect.js';
import { loadHandlers } from '../src/handler-loader.js';

const root = mkdtempSync(join(tmpdir(), 'glue-bad-input-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
function dir(files: Record<string, string> = {}): string {
  const d = join(root, `d${(n += 1)}`);
  mkdirSync(d);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(d, name), text);
  return d;
}
const GOOD = '[handler]\nclass=./h.mjs#H\nevents=start\n';
/** Importing h.mjs leaves a file beside it. */
const MARKING_MODULE =
  "import { writeFileSync } from 'node:fs';\nwriteFileSync(new URL('./imported', import.meta.url), '1');\nexport class H { handle() {} }\n";

const problemsOf = (text: string): string[] =>
  validateHandlerIni(new IniDocument('/x/h.ini', text)).problems.map(formatProblem);

describe('files that are not regular files, or too big', () => {
  it('an INI file that is a FIFO, or a symlink to one, is a problem, not a hang', async () => {
    const d = dir({ 'a.ini': GOOD });
    execFileSync('mkfifo', [join(d, 'fifo.ini')]);
    execFileSync('mkfifo', [join(d, 'target')]);
    symlinkSync(join(d, 'target'), join(d, 'link.ini'));
    const { problems } = await readHandlerConfigs([d]);
    expect(problems.map(formatProblem)).toEqual([
      `${join(d, 'fifo.ini')}: cannot read: it is a FIFO (named pipe), not a regular file`,
      `${join(d, 'link.ini')}: cannot read: it is a FIFO (named pipe), not a regular file`,
    ]);
  });

  it('a file over 1 MiB is refused with its size; a config dir that cannot be listed is a problem', async () => {
    const d = dir({ 'big.ini': `${GOOD}[params]\n${'; padding\n'.repeat(120_000)}` });
    const { problems } = await readHandlerConfigs([d, join(d, 'big.ini')]);
    expect(problems.map(formatProblem)).toEqual([
      `${join(d, 'big.ini')}: cannot list the config dir: ENOTDIR: not a directory, scandir '${join(d, 'big.ini')}'`,
      `${join(d, 'big.ini')}: cannot read: it is 1.1 MiB; Glue reads at most 1.0 MiB`,
    ]);
  });

  it('a key repeated 40,000 times is one problem with its lines, found in linear time', () => {
    const doc = new IniDocument('/x/h.ini', `${GOOD}[params]\n${'x=1\n'.repeat(40_000)}`);
    expect(doc.duplicates).toHaveLength(1);
    expect(doc.duplicates[0]?.lines).toHaveLength(40_000);
    expect(doc.duplicates[0]?.lines[39_999]).toBe(40_004);
  });

  it('a class file that is a FIFO or a device is refused before import; /dev/zero is not even a module path', async () => {
    const d = dir({});
    execFileSync('mkfifo', [join(d, 'fifo.js')]);
    symlinkSync('/dev/zero', join(d, 'zero.js'));
    const cfg = (className: string): HandlerConfig => ({
      ...(validateHandlerIni(new IniDocument(join(d, 'h.ini'), `[handler]\nclass=${className}\nevents=start\n`))
        .config as HandlerConfig),
    });
    const { problems } = await loadHandlers([cfg('./fifo.js#X'), cfg('./zero.js#X')], fakeAgent());
    expect(problems.map((p) => p.message)).toEqual([
      expect.stringMatching(/fifo\.js is a FIFO \(named pipe\), not a regular file$/),
      expect.stringMatching(/zero\.js is a character device, not a regular file$/),
    ]);
    expect(problemsOf('[handler]\nclass=/dev/zero#X\nevents=start\n')).toEqual([
      '/x/h.ini:2 [handler] class: "/dev/zero#X": a handler file must end in .js, .mjs or .cjs',
    ]);
  });
});

describe('class= never runs inline code, and nothing is imported while the configuration is bad', () => {
  it('data:, file: and node: specifiers are refused without being imported', () => {
    for (const spec of [
      'data:text/javascript,process.exit(3)#X',
      'file:///tmp/x.mjs#X',
      'node:fs#X',
      'fs#readFileSync',
      'https://example.com/x.js#X',
    ]) {
      expect(problemsOf(`[handler]\nclass=${spec}\nevents=start\n`)).toEqual([
        expect.stringMatching(
          /^\/x\/h\.ini:2 \[handler\] class: .*(not a package name or a file path|must end in \.js)/,
        ),
      ]);
    }
  });

  it('a bad file elsewhere: exit-2 problems only, the class of the good file is not imported', async () => {
    const d = dir({
      'a.ini': GOOD,
      'b.ini': '[handler]\nclass=data:text/javascript,export class H{}#H\nevents=start\n',
      'h.mjs': MARKING_MODULE,
    });
    const err = await createGlue({ configDirs: [d] })
      .load()
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems).toHaveLength(1);
    expect(existsSync(join(d, 'imported'))).toBe(false);
  });

  it('a module that calls process.exit at import, never settles its top-level await, or is slow: a problem naming it', async () => {
    const d = dir({
      'exits.mjs': 'process.exit(0);\nexport class H { handle() {} }\n',
      'never.mjs': 'await new Promise(() => {});\nexport class H { handle() {} }\n',
      'slow.mjs': 'await new Promise((r) => setTimeout(r, 5000));\nexport class H { handle() {} }\n',
    });
    const cfg = (file: string): HandlerConfig =>
      validateHandlerIni(new IniDocument(join(d, `${file}.ini`), `[handler]\nclass=./${file}.mjs#H\nevents=start\n`))
        .config as HandlerConfig;
    const { problems } = await loadHandlers([cfg('exits'), cfg('never'), cfg('slow')], fakeAgent(), [], {
      importTimeoutMs: 300,
    });
    expect(problems.map((p) => p.message)).toEqual([
      expect.stringMatching(/cannot import \.\/exits\.mjs: the module called process\.exit\(0\) while loading/),
      expect.stringMatching(/cannot import \.\/never\.mjs: \.\/never\.mjs did not finish loading within 0\.3 s/),
      expect.stringMatching(/cannot import \.\/slow\.mjs: \.\/slow\.mjs did not finish loading within 0\.3 s/),
    ]);
  });
});

describe('one strict reader: what ConfigParser refuses or `ini` read differently is a problem with its line', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['a key cut at ;', 'events;old=start', /2 \[handler\] events;old: key "events;old" may hold only/],
    ['a section name with ;', '[params;2]', /:2 \[handler\]: section name "params;2" may hold only/],
    ['a quoted key', '"script"=x', /key "\\"script\\"" may hold only/],
    ['a key cut at #', 'script#2=x', /key "script#2" may hold only/],
    ['a quoted section', '["handler"]', /section name "\\"handler\\"" may hold only/],
    ['a key alone', 'enabled', /"enabled" is not key=value/],
    ['a key without a name', '=orphan', /a line starting with = has no key/],
    ['a prototype key', '__proto__=x', /key "__proto__" may hold only/],
    ['a dotted section', '[params.sub]', /section name "params\.sub" may hold only/],
    ['a line separator', 'enabled=0\u2028', /contains the control character U\+2028 at column 10/],
    ['an array key', 'config-file[]=x', /key "config-file\[\]" may hold only/],
    ['a colon', 'events: start', /ConfigParser would split this line at ':'/],
    ['an indented line', '  timeout=3', /indented line/],
    ['an upper-case key', 'Enabled=1', /keys are lower-case \(ConfigParser reads it as enabled\); write enabled/],
    ['text after a header', '[params] x', /text after the section header/],
    ['an ANSI escape', 'x=\u001b[31mred', /control character U\+001B at column 3/],
  ];
  for (const [what, line, message] of cases) {
    it(what, () => {
      const problems = problemsOf(`[handler]\n${line}\nclass=./h.mjs#H\nevents=start\n`);
      expect(
        problems.some((p) => p.startsWith('/x/h.ini:2') && message.test(p)),
        problems.join('\n'),
      ).toBe(true);
    });
  }

  it('text before the first section, an unknown section, events=, are problems', () => {
    expect(problemsOf(`script=x\n${GOOD}`)).toEqual(['/x/h.ini:1 script: script=... comes before the first [section]']);
    expect(problemsOf(`${GOOD}[parms]\nscript=x\n`)).toEqual([
      '/x/h.ini:4 [parms]: unknown section (Glue reads [handler] and [params])',
    ]);
    expect(problemsOf('[handler]\nclass=./h.mjs#H\nevents=,\n')).toEqual([
      '/x/h.ini:3 [handler] events: "," lists no event (e.g. events=start,die, or all, none)',
    ]);
  });

  it('values are what the line says: quotes, null, JSON and ; # stay part of the value', () => {
    const doc = new IniDocument(
      '/x/h.ini',
      `${GOOD}[params]\na="x y"\nb=null\nc={"a":1}\nd=[1]\ne=v ; not a comment # either\n`,
    );
    expect(doc.problems).toEqual([]);
    expect(doc.section('params')).toEqual({
      a: '"x y"',
      b: 'null',
      c: '{"a":1}',
      d: '[1]',
      e: 'v ; not a comment # either',
    });
  });

  it('a UTF-8 BOM is skipped; CR-only line ends are read like LF', () => {
    expect(problemsOf(`\ufeff${GOOD}`)).toEqual([]);
    const cr = new IniDocument('/x/h.ini', '[handler]\rclass=@glue/handler-exec#ScriptHandler\revents=start\r');
    expect(cr.problems).toEqual([]);
    expect(cr.get('handler', 'class')).toBe('@glue/handler-exec#ScriptHandler');
    expect(cr.lineOf('handler', 'events')).toBe(3);
  });

  it('[handler] timeout has a range', () => {
    expect(problemsOf('[handler]\nclass=./h.mjs#H\nevents=start\ntimeout=0.0001\n')).toEqual([
      '/x/h.ini:4 [handler] timeout: "0.0001" is not a number of seconds from 0.001 to 86400',
    ]);
  });
});

describe('messages print what the operator wrote escaped and bounded', () => {
  it('control characters, ANSI escapes and line separators are escaped; long values are cut', () => {
    expect(quote('a\u001b[2Jb\nc\u2028')).toBe('"a\\u001b[2Jb\\nc\\u2028"');
    expect(quote('x'.repeat(300), 10)).toBe('"xxxxxxxxxx"… (290 more characters)');
    expect(formatProblem({ file: '/etc/glue.d/\u001b[31mevil.ini', message: 'm' })).toBe(
      '"/etc/glue.d/\\u001b[31mevil.ini": m',
    );
  });
});

describe('--docker-url and DOCKER_HOST', () => {
  const bad = (url: string): GlueError => {
    try {
      dockerEndpoint(url, {});
    } catch (err) {
      return err as GlueError;
    }
    throw new Error(`${url} was accepted`);
  };
  it('a bad %-escape, unix:// without a path, a relative unix path, a NUL: ENGINE_CONFIG, escaped', () => {
    expect(bad('unix:///run/%ZZ.sock')).toMatchObject({
      code: 'ENGINE_CONFIG',
      message: expect.stringMatching(/%-escape in the path is malformed/),
    });
    expect(bad('unix://').message).toMatch(/the socket path is missing/);
    expect(bad('unix://relative/x.sock').message).toMatch(
      /takes an absolute path after unix:\/\/ \(unix:\/\/\/relative\/x\.sock/,
    );
    expect(bad('unix:///run/x\u0000.sock').message).toMatch(/"unix:\/\/\/run\/x\\u0000\.sock".*control character/);
    expect(() => dockerEndpoint(undefined, { DOCKER_HOST: 'unix:///%E0%A4%A.sock' })).toThrow(/DOCKER_HOST.*malformed/);
  });
  it('DOCKER_CERT_PATH with a FIFO ca.pem: refused, not a hang', () => {
    const d = dir({});
    execFileSync('mkfifo', [join(d, 'ca.pem')]);
    expect(() => dockerEndpoint('tcp://127.0.0.1:2376', { DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: d })).toThrow(
      /ca\.pem: it is a FIFO \(named pipe\), not a regular file/,
    );
  });
});
