import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ConfigError,
  createGlue,
  IniDocument,
  loadHandlerConfigs,
  parseBoolean,
  resolveConfigDirs,
} from '../src/index.js';
import { matchesEvent, validateHandlerIni } from '../src/config-loader.js';

const dirs: string[] = [];
function fixture(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'glue-ini-'));
  dirs.push(dir);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('IniDocument', () => {
  it('keeps # and ; inside values, as Python ConfigParser did (package#Export)', () => {
    const doc = new IniDocument(
      'a.ini',
      '[handler]\nclass=@glue/handler-exec#ScriptHandler\n; a comment\n# another\n[params]\nx = a;b # c\n',
    );
    expect(doc.get('handler', 'class')).toBe('@glue/handler-exec#ScriptHandler');
    expect(doc.get('params', 'x')).toBe('a;b # c');
  });

  it('hands booleans back as the text written and knows the line of each key', () => {
    const doc = new IniDocument('a.ini', '[handler]\nclass=x\nenabled=true\n\n[params]\ndemo-option=some value\n');
    expect(doc.get('handler', 'enabled')).toBe('true');
    expect(doc.lineOf('handler', 'enabled')).toBe(3);
    expect(doc.lineOf('params')).toBe(5);
    expect(doc.get('params', 'demo-option')).toBe('some value');
    expect(doc.get('params', 'missing', 'fallback')).toBe('fallback');
  });
});

describe('validateHandlerIni', () => {
  const check = (text: string) => validateHandlerIni(new IniDocument('/etc/glue.d/x.ini', text));

  it('accepts the original test.ini, with triggers-none and the dotted class name', () => {
    const { config, problems } = check(
      '[handler]\nclass=DockerGlue.handlers.exec.ScriptHandler\nevents=all,none\nenabled=1\ntriggers-none=0\n\n[params]\nscript=test-handler.sh\ndemo-option=some value\n',
    );
    expect(problems).toEqual([]);
    expect(config?.events).toEqual(new Set(['all', 'none']));
    expect(config?.enabled).toBe(true);
    expect(config?.triggersNone).toBe(false);
    expect(config?.params).toEqual({ script: 'test-handler.sh', 'demo-option': 'some value' });
    expect(config?.name).toBe('x.ini');
  });

  it('accepts triggers_none and every boolean spelling', () => {
    for (const [v, b] of [
      ['yes', true],
      ['on', true],
      ['TRUE', true],
      ['off', false],
      ['no', false],
      ['0', false],
    ] as const) {
      expect(check(`[handler]\nclass=a#B\nevents=start\ntriggers_none=${v}\n`).config?.triggersNone).toBe(b);
    }
  });

  it('reports every problem of a file with its line, section and key', () => {
    const { problems } = check('[handler]\nevents=start,strat\nenabled=maybe\ncolour=blue\ntimeout=-1\n');
    const where = problems.map((p) => `${p.line}:${p.key}`);
    expect(where).toEqual(
      expect.arrayContaining(['2:events', '3:enabled', '4:colour', '5:timeout', 'undefined:class']),
    );
    expect(problems.find((p) => p.key === 'events')?.message).toMatch(/unknown event "strat"/);
    expect(problems.find((p) => p.key === 'enabled')?.message).toMatch(/not a boolean/);
  });

  it('rejects a key written twice in [handler], and a file without [handler]', () => {
    expect(check('[handler]\nclass=a#B\nevents=start\nevents=die\n').problems[0]?.message).toMatch(
      /written 2 times \(lines 3, 4\)/,
    );
    expect(check('[params]\nx=1\n').problems[0]?.message).toMatch(/missing \[handler\] section/);
  });

  it('rejects a section written twice and a key written twice in [params] (ConfigParser refused both)', () => {
    const { problems } = check(
      '[handler]\nclass=a#B\nevents=start\n[params]\nx=1\n[handler]\nenabled=1\n[params]\nx=2\n',
    );
    expect(problems.map((p) => `${p.line} [${p.section}] ${p.key ?? ''}: ${p.message}`)).toEqual([
      '6 [handler] : section written 2 times (lines 1, 6); merge them into one',
      '8 [params] : section written 2 times (lines 4, 8); merge them into one',
      '5 [params] x: written 2 times (lines 5, 9); keep one',
    ]);
  });
});

describe('matchesEvent', () => {
  it('all matches every real event but not none; none only none', () => {
    expect(matchesEvent(new Set(['all']), 'start')).toBe(true);
    expect(matchesEvent(new Set(['all']), 'none')).toBe(false);
    expect(matchesEvent(new Set(['none']), 'none')).toBe(true);
    expect(matchesEvent(new Set(['start']), 'die')).toBe(false);
  });
  it('parseBoolean', () => {
    expect(parseBoolean(' On ')).toBe(true);
    expect(parseBoolean('2')).toBeUndefined();
  });
});

describe('loadHandlerConfigs', () => {
  it('loads *.ini in file-name order across dirs and ignores other files', async () => {
    const a = fixture({ 'b.ini': '[handler]\nclass=x#X\nevents=start\n', 'notes.txt': 'x' });
    const b = fixture({ 'a.ini': '[handler]\nclass=x#X\nevents=die\n', 'c.ini.example': '[handler]\n' });
    const configs = await loadHandlerConfigs([a, b]);
    expect(configs.map((c) => c.name)).toEqual(['a.ini', 'b.ini']);
  });

  it('reports the problems of all files at once: one bad file does not hide another', async () => {
    const dir = fixture({
      'a.ini': '[handler]\nclass=x#X\nevents=bogus\n',
      'b.ini': '[handler]\nevents=start\n',
      'c.ini': '[handler]\nclass=x#X\nevents=start\n',
    });
    const err = await loadHandlerConfigs([dir]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    const problems = (err as ConfigError).problems;
    expect(problems.map((p) => p.file.split('/').pop())).toEqual(['a.ini', 'b.ini']);
    expect((err as ConfigError).message).toMatch(/a\.ini:3 \[handler\] events: unknown event "bogus"/);
  });

  it('rejects two files with the same name in different dirs (one handler name, two handlers)', async () => {
    const a = fixture({ 'x.ini': '[handler]\nclass=x#X\nevents=start\n' });
    const b = fixture({ 'x.ini': '[handler]\nclass=x#X\nevents=die\n' });
    const err = await loadHandlerConfigs([a, b]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems).toEqual([
      expect.objectContaining({
        file: join(b, 'x.ini'),
        message: expect.stringContaining(join(a, 'x.ini')) as unknown,
      }),
    ]);
  });

  it('createGlue().load(): structural problems of every file first, nothing imported; then class and [params] problems of every file', async () => {
    const files = {
      'a.ini': '[handler]\nclass=./h.mjs#Good\nevents=start,explode\n',
      'b.ini': '[params]\nx=1\n',
      'c.ini': '[handler]\nclass=@nobody/not-installed#Nope\nevents=start\n',
      'd.ini': '[handler]\nclass=./h.mjs#Picky\nevents=start\n',
      'e.ini': '[handler]\nclass=./h.mjs#Good\nevents=start\n',
      // Importing it leaves a mark: it must not be imported while a file is known to be bad.
      'h.mjs':
        "import { writeFileSync } from 'node:fs';\nwriteFileSync(new URL('./imported', import.meta.url), '1');\nexport class Good { handle() {} }\nexport class Picky { constructor() { throw new Error('picky params'); } handle() {} }\n",
    };
    const dir = fixture(files);
    const err = await createGlue({ configDirs: [dir] })
      .load()
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems.map((p) => p.file.split('/').pop())).toEqual(['a.ini', 'b.ini']);
    expect(existsSync(join(dir, 'imported'))).toBe(false);

    writeFileSync(join(dir, 'a.ini'), '[handler]\nclass=./h.mjs#Good\nevents=start\n');
    writeFileSync(join(dir, 'b.ini'), '[handler]\nclass=./h.mjs#Good\nevents=die\n[params]\nx=1\n');
    const second = await createGlue({ configDirs: [dir] })
      .load()
      .catch((e: unknown) => e);
    expect(second).toBeInstanceOf(ConfigError);
    const problems = (second as ConfigError).problems;
    expect(problems.map((p) => p.file.split('/').pop())).toEqual(['c.ini', 'd.ini']);
    expect(problems[0]).toMatchObject({ section: 'handler', key: 'class', line: 2 });
    expect((second as ConfigError).message).toMatch(/c\.ini:2 \[handler\] class: .*@nobody\/not-installed/);
    expect((second as ConfigError).message).toMatch(/d\.ini: .*picky params/);
    expect(existsSync(join(dir, 'imported'))).toBe(true);
  });

  it('says so when a dir has no *.ini', async () => {
    await expect(loadHandlerConfigs([fixture({})])).rejects.toThrow(/no \*\.ini handler files found/);
  });
});

describe('resolveConfigDirs', () => {
  it('uses the dirs given, each must exist', async () => {
    const a = fixture({});
    expect(await resolveConfigDirs([a])).toEqual([a]);
    await expect(resolveConfigDirs([join(a, 'nope')])).rejects.toThrow(/config dir does not exist/);
  });
  it('falls back to ./docker-glue.d in the working dir', async () => {
    const cwd = fixture({});
    mkdirSync(join(cwd, 'docker-glue.d'));
    expect(await resolveConfigDirs(undefined, cwd)).toEqual([join(cwd, 'docker-glue.d')]);
  });
});
