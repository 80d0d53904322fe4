/**
 * Typed errors. Every error Glue raises carries a stable `code`, and where it applies the handler
 * (its INI file name) and the input at fault, so a log line tells an operator what to fix.
 */
export type GlueErrorCode =
  | 'CONFIG_INVALID'
  | 'HANDLER_LOAD'
  | 'HANDLER_FAILED'
  | 'HANDLER_TIMEOUT'
  | 'ENGINE_UNREACHABLE'
  /** The Docker address or TLS settings cannot be used (bad URL or scheme, unreadable certificates). */
  | 'ENGINE_CONFIG'
  | 'INVALID_LABEL'
  | 'INVALID_PARAM'
  /** A Glue method called in a state where it cannot run (runOnce() twice, start() after stop()). */
  | 'INVALID_STATE'
  /** A program the handler runs failed (a script's exit code, a reload command, ip, ovs-vsctl). */
  | 'COMMAND_FAILED'
  /** The handler's backend refused the change (haproxy -c, a template that does not render). */
  | 'BACKEND_REJECTED'
  /** The handler's backend cannot be reached (etcd down) or is held by someone else (a rival agent). */
  | 'BACKEND_UNAVAILABLE'
  /** Something the handler needs is not installed (the haproxy binary). */
  | 'DEPENDENCY_MISSING'
  /** The run was cancelled: Glue is stopping, or the run's signal aborted. */
  | 'HANDLER_CANCELLED'
  /**
   * A file the handler would write (or an nftables table it would replace) exists and was not made by
   * Glue: it is never replaced without a takeover.
   */
  | 'FOREIGN_FILE';

export interface GlueErrorOptions {
  /** The handler the error belongs to: the INI file's base name, e.g. `lb.ini`. */
  handler?: string | undefined;
  /** The file at fault, when there is one. */
  file?: string | undefined;
  cause?: unknown;
}

/**
 * The kinds an error was made as, under a key every copy of @glue/core shares (`Symbol.for`): a handler
 * that brings its own copy throws errors the daemon's copy still recognises with `instanceof`.
 */
const KINDS = Symbol.for('@glue/core:error-kinds');

function hasKind(value: unknown, kind: string): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const kinds = (value as { [KINDS]?: unknown })[KINDS];
  return Array.isArray(kinds) && kinds.includes(kind);
}

export class GlueError extends Error {
  /** What every copy of @glue/core calls this class (each subclass of core's sets its own). */
  static readonly kind: string = 'GlueError';

  /** Same copy: the prototype chain; another copy of @glue/core: the shared brand. */
  static override [Symbol.hasInstance](this: { kind: string; prototype: unknown }, value: unknown): boolean {
    if (Function.prototype[Symbol.hasInstance].call(this, value)) return true;
    return Object.hasOwn(this, 'kind') && hasKind(value, this.kind);
  }

  readonly code: GlueErrorCode;
  readonly handler: string | undefined;
  readonly file: string | undefined;

  constructor(code: GlueErrorCode, message: string, options: GlueErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    const kinds: string[] = [];
    for (let c: unknown = new.target; typeof c === 'function' && c !== Error; c = Object.getPrototypeOf(c))
      if (Object.hasOwn(c, 'kind')) kinds.push((c as unknown as { kind: string }).kind);
    Object.defineProperty(this, KINDS, { value: kinds });
    this.name = 'GlueError';
    this.code = code;
    this.handler = options.handler;
    this.file = options.file;
  }
}

/** One problem found in a config file: where it is and what is wrong. */
export interface ConfigProblem {
  file: string;
  section?: string | undefined;
  key?: string | undefined;
  line?: number | undefined;
  message: string;
}

export function formatProblem(p: ConfigProblem): string {
  const file = printable(p.file);
  const where = [p.line === undefined ? file : `${file}:${p.line}`];
  if (p.section !== undefined) where.push(`[${printable(p.section)}]`);
  if (p.key !== undefined) where.push(printable(p.key));
  return `${where.join(' ')}: ${p.message}`;
}

/** All problems of all config files, reported at once before anything runs. */
export class ConfigError extends GlueError {
  static override readonly kind: string = 'ConfigError';
  readonly problems: readonly ConfigProblem[];

  constructor(problems: readonly ConfigProblem[]) {
    const lines = problems.map((p) => `  ${formatProblem(p)}`).join('\n');
    super(
      'CONFIG_INVALID',
      `invalid configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${lines}`,
    );
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** A container label that does not match its grammar. Handlers drop that container's route, nothing else. */
export class LabelError extends GlueError {
  static override readonly kind: string = 'LabelError';
  readonly container: string;
  readonly label: string;
  readonly value: string;
  readonly reason: string;

  constructor(container: string, label: string, value: string, reason: string, options: GlueErrorOptions = {}) {
    super('INVALID_LABEL', `container ${container}: label ${label}=${JSON.stringify(value)}: ${reason}`, options);
    this.name = 'LabelError';
    this.container = container;
    this.label = label;
    this.value = value;
    this.reason = reason;
  }
}

/** One `[params]` key a handler cannot use, and why. */
export interface ParamProblem {
  key: string;
  /** What is wrong with the value, without file and key (a command line names its flag instead). */
  reason: string;
}

/**
 * `[params]` of an INI file that a handler cannot use: every problem at once (`problems`), each
 * reported by the loader as its own `file:line [params] key` line. `key` and `reason` are the first.
 */
export class ParamError extends GlueError {
  static override readonly kind: string = 'ParamError';
  readonly key: string;
  readonly reason: string;
  readonly problems: readonly ParamProblem[];

  constructor(file: string, key: string, reason: string, options: GlueErrorOptions = {}) {
    super('INVALID_PARAM', `${file} [params] ${key}: ${reason}`, { file, ...options });
    this.name = 'ParamError';
    this.key = key;
    this.reason = reason;
    this.problems = [{ key, reason }];
  }

  /** One error for every problem of one file's `[params]` (at least one). */
  static of(file: string, problems: readonly ParamProblem[], options: GlueErrorOptions = {}): ParamError {
    const [first, ...rest] = problems;
    if (!first) throw new Error('ParamError.of needs at least one problem');
    const err = new ParamError(file, first.key, first.reason, options);
    if (rest.length > 0) {
      err.message = [first, ...rest].map((p) => `${file} [params] ${p.key}: ${p.reason}`).join('\n');
      (err as { problems: readonly ParamProblem[] }).problems = problems;
    }
    return err;
  }
}

/** Characters JSON.stringify leaves as they are but a terminal or a log viewer would act on. */
const UNSAFE = /[\u007f-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/g;

/**
 * `value` quoted for a message: control characters, ANSI escapes, line and paragraph separators and
 * bidi controls escaped (`\u001b`), and cut after `max` characters with how much was left out. What
 * an operator wrote (a file name, a key, a value) goes through this before it reaches a log line.
 */
export function quote(value: string, max = 120): string {
  const cut = value.length > max ? value.slice(0, max) : value;
  const text = JSON.stringify(cut).replace(UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return value.length > max ? `${text}… (${value.length - max} more characters)` : text;
}

/** A name (file, key, section) for a message: as is when it is plain, else quoted like `quote`. */
export function printable(name: string, max = 200): string {
  return /^[\x21-\x7e]*$/.test(name) && name.length <= max && !name.includes('"') ? name : quote(name, max);
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
