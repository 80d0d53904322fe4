import { isAbsolute, join, resolve as resolvePath } from 'node:path';
import { pathToFileURL } from 'node:url';
import { resolve as resolveModule } from 'import-meta-resolve';
import type { HandlerConfig } from './config-loader.js';
import { type ConfigProblem, errorMessage, GlueError, ParamError } from './errors.js';
import { type Agent, type Handler, type HandlerClass, isHandlerClass } from './handler.js';

/** The original docker-glue's dotted class names, kept working as aliases. */
export const CLASS_ALIASES: Readonly<Record<string, string>> = {
  'DockerGlue.handlers.exec.ScriptHandler': '@glue/handler-exec#ScriptHandler',
  'DockerGlue.handlers.lb.HAProxyHandler': '@glue/handler-haproxy#HAProxyHandler',
  'DockerGlue.handlers.publishers.distconfig.Publisher': '@glue/publisher-etcd#Publisher',
};

export interface ClassSpec {
  /** Package name or file path (absolute, or relative to the INI's directory). */
  module: string;
  /** Export name; `default` when the spec has no `#`. */
  exportName: string;
  isFile: boolean;
}

export function parseClassSpec(className: string): ClassSpec {
  const spec = CLASS_ALIASES[className] ?? className;
  const hash = spec.lastIndexOf('#');
  const module = hash === -1 ? spec : spec.slice(0, hash);
  const exportName = hash === -1 ? 'default' : spec.slice(hash + 1);
  const isFile = module.startsWith('./') || module.startsWith('../') || isAbsolute(module);
  return { module, exportName, isFile };
}

export interface LoadedHandler {
  config: HandlerConfig;
  instance: Handler;
}

/**
 * Imports the class an INI names and checks it is a handler. A package is resolved from the INI's
 * directory first, then from each of `fallbackParents` (the CLI passes its own install).
 */
export async function loadHandlerClass(config: HandlerConfig, fallbackParents: readonly string[] = []): Promise<HandlerClass> {
  const spec = parseClassSpec(config.className);
  const fail = (what: string, cause?: unknown): GlueError =>
    new GlueError('HANDLER_LOAD', `class ${JSON.stringify(config.className)}: ${what}`, { handler: config.name, file: config.file, cause });
  if (spec.module === '' || spec.exportName === '') throw fail('write it as package#Export or ./file.js#Export');

  let url: string;
  if (spec.isFile) {
    url = pathToFileURL(resolvePath(config.dir, spec.module)).href;
  } else {
    const parents = [pathToFileURL(join(config.dir, 'glue.ini')).href, ...fallbackParents];
    let found: string | undefined;
    for (const parent of parents) {
      try {
        found = resolveModule(spec.module, parent);
        break;
      } catch {
        // try the next place
      }
    }
    if (found === undefined) {
      throw fail(`package ${JSON.stringify(spec.module)} is not installed where Glue can see it (looked from ${config.dir} and from the glue install); install it with npm/pnpm there`);
    }
    url = found;
  }

  let mod: Record<string, unknown>;
  try {
    mod = (await import(url)) as Record<string, unknown>;
  } catch (err) {
    throw fail(`cannot import ${spec.module}: ${errorMessage(err)}`, err);
  }
  let exported = mod[spec.exportName];
  // A CommonJS module arrives as { default: module.exports }.
  if (exported === undefined && mod.default !== null && typeof mod.default === 'object') {
    exported = (mod.default as Record<string, unknown>)[spec.exportName];
  }
  if (exported === undefined) {
    const names = Object.keys(mod).filter((k) => k !== '__esModule');
    throw fail(`${spec.module} has no export ${JSON.stringify(spec.exportName)} (it exports: ${names.join(', ') || 'nothing'})`);
  }
  if (!isHandlerClass(exported)) {
    throw fail(`${spec.module}#${spec.exportName} is not a handler class: it needs a constructor (agent, iniFile, ini) and a handle(event, containerId) method`);
  }
  return exported;
}

/**
 * Loads and constructs every enabled handler. Every failure is collected as a problem naming the INI
 * file (and the [params] key for a ParamError), so all of them are reported at once.
 */
export async function loadHandlers(
  configs: readonly HandlerConfig[],
  agent: Agent,
  fallbackParents: readonly string[] = [],
): Promise<{ handlers: LoadedHandler[]; problems: ConfigProblem[] }> {
  const handlers: LoadedHandler[] = [];
  const problems: ConfigProblem[] = [];
  for (const config of configs) {
    if (!config.enabled) continue;
    let Cls: HandlerClass;
    try {
      Cls = await loadHandlerClass(config, fallbackParents);
    } catch (err) {
      problems.push({ file: config.file, section: 'handler', key: 'class', line: config.ini.lineOf('handler', 'class'), message: errorMessage(err) });
      continue;
    }
    try {
      handlers.push({ config, instance: new Cls(agent, config.file, config.ini) });
    } catch (err) {
      if (err instanceof ParamError) {
        problems.push({ file: config.file, section: 'params', key: err.key, line: config.ini.lineOf('params', err.key), message: err.message.replace(/^.*? \[params\] \S+: /, '') });
      } else {
        problems.push({ file: config.file, message: `${config.className}: cannot start: ${errorMessage(err)}` });
      }
    }
  }
  return { handlers, problems };
}
