import { readdir, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { ConfigError, type ConfigProblem, errorMessage, quote } from './errors.js';
import { type ContainerFilter, FILTER_KEYS, parseFilter } from './filters.js';
import { ALL, CONTAINER_ACTIONS, isKnownEvent, NONE } from './events.js';
import { FileReadError, readTextFile } from './files.js';
import { classSpecProblem } from './handler-loader.js';
import { IniDocument } from './ini-document.js';

/** Where Glue looks for INI files when no `-c/--config-dir` is given: the first that exists is used. */
export const DEFAULT_CONFIG_DIRS = ['./docker-glue.d', '/etc/docker-glue.d', '/etc/glue.d'] as const;

/** Default bound on how long one handler run may hold up the next handler of the same container. */
export const DEFAULT_HANDLER_TIMEOUT_MS = 60_000;

/** One `[handler]` INI file, validated. */
export interface HandlerConfig {
  /** Absolute path of the INI file. */
  file: string;
  /** The file's base name (`lb.ini`): how logs and errors name the handler. */
  name: string;
  /** Directory of the INI file: relative class paths and scripts resolve against it. */
  dir: string;
  /** The `class` value as written. */
  className: string;
  /** Events as listed, deduplicated; may contain `all` and `none`. */
  events: ReadonlySet<string>;
  enabled: boolean;
  triggersNone: boolean;
  /** `[handler] timeout` (seconds in the file): after this the next handler of the container goes on. */
  timeoutMs: number;
  /** `[handler] only-*`: the containers this handler sees (undefined: all of them). */
  filter?: ContainerFilter;
  /** `[params]`, handed to the handler as is. */
  params: Readonly<Record<string, string>>;
  ini: IniDocument;
}

const TRUE = new Set(['1', 'yes', 'true', 'on']);
const FALSE = new Set(['0', 'no', 'false', 'off']);
const HANDLER_KEYS = new Set<string>([
  'class',
  'events',
  'enabled',
  'triggers-none',
  'triggers_none',
  'timeout',
  ...FILTER_KEYS,
]);
/** The sections Glue reads: anything else (a typo like [parms]) would be ignored without a word. */
const SECTIONS = new Set(['handler', 'params']);

export function parseBoolean(value: string): boolean | undefined {
  const v = value.trim().toLowerCase();
  if (TRUE.has(v)) return true;
  if (FALSE.has(v)) return false;
  return undefined;
}

/** Does a handler listening to `events` run for `action`? `all` covers every real event, never `none`. */
export function matchesEvent(events: ReadonlySet<string>, action: string): boolean {
  if (action === NONE) return events.has(NONE);
  return events.has(ALL) || events.has(action);
}

/** Validates one parsed INI document; returns the handler config and every problem found. */
export function validateHandlerIni(doc: IniDocument): { config?: HandlerConfig; problems: ConfigProblem[] } {
  const file = doc.path;
  const problems: ConfigProblem[] = [];
  const at = (section: string, key?: string) => ({ file, section, key, line: doc.lineOf(section, key) });

  for (const p of doc.problems) problems.push({ file, ...p });
  for (const section of doc.sections()) {
    if (!SECTIONS.has(section))
      problems.push({
        file,
        section,
        line: doc.lineOf(section),
        message: `unknown section (Glue reads [handler] and [params])`,
      });
  }
  // Python's ConfigParser (docker-glue) refused both; `ini` would silently merge sections and keep one value.
  for (const dup of doc.duplicateSections) {
    problems.push({
      file,
      section: dup.section,
      line: dup.lines[1],
      message: `section written ${dup.lines.length} times (lines ${dup.lines.join(', ')}); merge them into one`,
    });
  }
  for (const dup of doc.duplicates) {
    problems.push({
      ...at(dup.section, dup.key),
      message: `written ${dup.lines.length} times (lines ${dup.lines.join(', ')}); keep one`,
    });
  }
  if (!doc.hasSection('handler')) {
    if (doc.problems.length === 0)
      problems.push({ file, message: 'missing [handler] section (it needs at least class= and events=)' });
    return { problems };
  }
  for (const key of Object.keys(doc.section('handler'))) {
    if (!HANDLER_KEYS.has(key)) {
      problems.push({
        ...at('handler', key),
        message: `unknown key (known: ${[...HANDLER_KEYS].join(', ')}); handler options go in [params]`,
      });
    }
  }
  if (doc.has('handler', 'triggers-none') && doc.has('handler', 'triggers_none')) {
    problems.push({
      ...at('handler', 'triggers_none'),
      message: 'set either triggers-none or triggers_none, not both',
    });
  }

  const className = doc.get('handler', 'class', '').trim();
  if (className === '')
    problems.push({
      ...at('handler', 'class'),
      message: 'missing: name the handler, e.g. class=@glue/handler-exec#ScriptHandler',
    });
  else {
    const bad = classSpecProblem(className);
    if (bad) problems.push({ ...at('handler', 'class'), message: bad });
  }

  const events = new Set<string>();
  const rawEvents = doc.get('handler', 'events');
  if (rawEvents === undefined || rawEvents.trim() === '') {
    problems.push({
      ...at('handler', 'events'),
      message: 'missing: list the events, e.g. events=start,die (or all, none)',
    });
  } else {
    for (const name of rawEvents.split(',').map((s) => s.trim().toLowerCase())) {
      if (name === '') continue;
      if (!isKnownEvent(name)) {
        problems.push({
          ...at('handler', 'events'),
          message: `unknown event ${quote(name, 40)} (known: ${NONE}, ${ALL}, ${CONTAINER_ACTIONS.join(', ')})`,
        });
      } else {
        events.add(name);
      }
    }
    if (events.size === 0 && !problems.some((p) => p.key === 'events')) {
      problems.push({
        ...at('handler', 'events'),
        message: `${quote(rawEvents, 40)} lists no event (e.g. events=start,die, or all, none)`,
      });
    }
  }

  const bool = (key: string, fallback: boolean): boolean => {
    const raw = doc.get('handler', key);
    if (raw === undefined) return fallback;
    const parsed = parseBoolean(raw);
    if (parsed === undefined) {
      problems.push({
        ...at('handler', key),
        message: `${quote(raw, 40)} is not a boolean (use 1/yes/true/on or 0/no/false/off)`,
      });
      return fallback;
    }
    return parsed;
  };
  const enabled = bool('enabled', true);
  const triggersNone = doc.has('handler', 'triggers_none')
    ? bool('triggers_none', false)
    : bool('triggers-none', false);

  let timeoutMs = DEFAULT_HANDLER_TIMEOUT_MS;
  const rawTimeout = doc.get('handler', 'timeout');
  if (rawTimeout !== undefined) {
    const seconds = Number(rawTimeout.trim());
    if (!/^\d+(\.\d+)?$/.test(rawTimeout.trim()) || !(seconds >= 0.001) || seconds > 86_400) {
      problems.push({
        ...at('handler', 'timeout'),
        message: `${quote(rawTimeout, 40)} is not a number of seconds from 0.001 to 86400`,
      });
    } else {
      timeoutMs = Math.round(seconds * 1000);
    }
  }

  const filtered = parseFilter((key) => doc.get('handler', key));
  for (const p of filtered.problems) problems.push({ ...at('handler', p.key), message: p.reason });

  if (problems.length > 0) return { problems };
  return {
    problems,
    config: {
      file,
      name: basename(file),
      dir: resolve(file, '..'),
      className,
      events,
      enabled,
      triggersNone,
      timeoutMs,
      ...(filtered.filter ? { filter: filtered.filter } : {}),
      params: doc.section('params'),
      ini: doc,
    },
  };
}

/** Picks the config dirs: the given ones (each must exist), else the first default that exists. */
export async function resolveConfigDirs(dirs: readonly string[] | undefined, cwd = process.cwd()): Promise<string[]> {
  if (dirs !== undefined && dirs.length > 0) {
    const problems: ConfigProblem[] = [];
    const found: string[] = [];
    for (const d of dirs) {
      const abs = resolve(cwd, d);
      if (await isDirectory(abs)) found.push(abs);
      else problems.push({ file: abs, message: 'config dir does not exist or is not a directory' });
    }
    if (problems.length > 0) throw new ConfigError(problems);
    return found;
  }
  for (const d of DEFAULT_CONFIG_DIRS) {
    const abs = resolve(cwd, d);
    if (await isDirectory(abs)) return [abs];
  }
  throw new ConfigError([
    {
      file: DEFAULT_CONFIG_DIRS.join(', '),
      message: 'no config dir found: create one of these or pass -c/--config-dir',
    },
  ]);
}

/** What reading the config dirs found: the valid handler configs and every problem of the others. */
export interface ReadConfigsResult {
  /** Configs of the files without structural problems, in the order handlers run. */
  configs: HandlerConfig[];
  /** Every structural problem of every file (unreadable, unparsable, bad [handler] keys, name clashes). */
  problems: ConfigProblem[];
  /** Every `*.ini` file found, in the order handlers run. */
  files: string[];
}

/**
 * Reads every `*.ini` of the dirs and validates them all, without throwing for a bad file: the
 * caller can still load the classes of the valid ones so all problems are reported together.
 * Handlers run in file-name order across all dirs; two files with the same name in different dirs
 * would be two handlers with one name in logs and errors, so that is a problem too.
 */
export async function readHandlerConfigs(dirs: readonly string[]): Promise<ReadConfigsResult> {
  const files: string[] = [];
  const problems: ConfigProblem[] = [];
  for (const dir of dirs) {
    let names: string[];
    try {
      names = (await readdir(dir)).filter((n) => n.endsWith('.ini')).sort();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      problems.push({
        file: dir,
        message: `cannot list the config dir: ${code === 'EACCES' ? 'permission denied' : errorMessage(err)}`,
      });
      continue;
    }
    for (const n of names) files.push(join(dir, n));
  }
  // Stable: equal names keep dir order, so the clash below names the first one.
  files.sort((a, b) => (basename(a) < basename(b) ? -1 : basename(a) > basename(b) ? 1 : 0));
  const configs: HandlerConfig[] = [];
  const firstByName = new Map<string, string>();
  for (const file of files) {
    const name = basename(file);
    const first = firstByName.get(name);
    if (first !== undefined) {
      problems.push({
        file,
        message: `same handler name as ${first}: handlers are named by file name, rename one of them`,
      });
      continue;
    }
    firstByName.set(name, file);
    let text: string;
    try {
      // Only a regular file, at most 1 MiB, never a read that blocks (a FIFO, /dev/zero).
      text = readTextFile(file);
    } catch (err) {
      problems.push({
        file,
        message: `cannot read: ${err instanceof FileReadError ? err.message : errorMessage(err)}`,
      });
      continue;
    }
    const result = validateHandlerIni(new IniDocument(file, text));
    problems.push(...result.problems);
    if (result.config) configs.push(result.config);
  }
  if (files.length === 0 && problems.length === 0) {
    problems.push({ file: dirs.join(', '), message: 'no *.ini handler files found' });
  }
  return { configs, problems, files };
}

/**
 * Reads every `*.ini` of the dirs, in file-name order across all dirs, and validates them all.
 * Throws one ConfigError listing every structural problem of every file; one bad file never hides
 * another's. (`createGlue` uses readHandlerConfigs so class and [params] problems join the list.)
 */
export async function loadHandlerConfigs(dirs: readonly string[]): Promise<HandlerConfig[]> {
  const { configs, problems } = await readHandlerConfigs(dirs);
  if (problems.length > 0) throw new ConfigError(problems);
  return configs;
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}
