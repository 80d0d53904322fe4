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
  | 'INVALID_PARAM';

export interface GlueErrorOptions {
  /** The handler the error belongs to: the INI file's base name, e.g. `lb.ini`. */
  handler?: string | undefined;
  /** The file at fault, when there is one. */
  file?: string | undefined;
  cause?: unknown;
}

export class GlueError extends Error {
  readonly code: GlueErrorCode;
  readonly handler: string | undefined;
  readonly file: string | undefined;

  constructor(code: GlueErrorCode, message: string, options: GlueErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
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
  const where = [p.line === undefined ? p.file : `${p.file}:${p.line}`];
  if (p.section !== undefined) where.push(`[${p.section}]`);
  if (p.key !== undefined) where.push(p.key);
  return `${where.join(' ')}: ${p.message}`;
}

/** All problems of all config files, reported at once before anything runs. */
export class ConfigError extends GlueError {
  readonly problems: readonly ConfigProblem[];

  constructor(problems: readonly ConfigProblem[]) {
    const lines = problems.map((p) => `  ${formatProblem(p)}`).join('\n');
    super('CONFIG_INVALID', `invalid configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${lines}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** A container label that does not match its grammar. Handlers drop that container's route, nothing else. */
export class LabelError extends GlueError {
  readonly container: string;
  readonly label: string;
  readonly value: string;

  constructor(container: string, label: string, value: string, reason: string, options: GlueErrorOptions = {}) {
    super('INVALID_LABEL', `container ${container}: label ${label}=${JSON.stringify(value)}: ${reason}`, options);
    this.name = 'LabelError';
    this.container = container;
    this.label = label;
    this.value = value;
  }
}

/** `[params]` of an INI file that a handler cannot use. */
export class ParamError extends GlueError {
  readonly key: string;
  /** What is wrong with the value, without file and key (a command line names its flag instead). */
  readonly reason: string;

  constructor(file: string, key: string, reason: string, options: GlueErrorOptions = {}) {
    super('INVALID_PARAM', `${file} [params] ${key}: ${reason}`, { file, ...options });
    this.name = 'ParamError';
    this.key = key;
    this.reason = reason;
  }
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
