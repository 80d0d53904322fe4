import { existsSync } from 'node:fs';
import { isBuiltin, register } from 'node:module';
import { extname, isAbsolute, join, resolve as resolvePath } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { resolve as resolveModule } from 'import-meta-resolve';
import type { HandlerConfig } from './config-loader.js';
import { type ConfigProblem, errorMessage, GlueError, type ParamError, type ParamProblem, quote } from './errors.js';
import { filteredAgent } from './filters.js';
import { regularFileProblem } from './files.js';
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

/** An npm package name (`pkg`, `@scope/pkg`), optionally with a subpath export (`pkg/sub`). */
const PACKAGE = /^(@[a-z0-9][a-z0-9._~-]*\/)?[a-z0-9][a-z0-9._~-]*(\/[A-Za-z0-9._~-]+)*$/;
const EXPORT_NAME = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
const MODULE_EXTENSIONS = new Set(['.js', '.mjs', '.cjs']);

/** How long one handler module may take to load (a top-level await that never settles, a slow import). */
export const IMPORT_TIMEOUT_MS = 10_000;

/**
 * Why a `class` value cannot name a handler, checked before anything is imported: only a package
 * name or a file path (`./x.js`, `../x.mjs`, `/abs/x.js`) with an optional `#Export`. URLs (`data:`,
 * `file:`, `http:`), `node:` builtins and anything else are refused, so an INI file cannot make Glue
 * run code that is not an installed package or a file on disk.
 */
export function classSpecProblem(className: string): string | undefined {
  const spec = parseClassSpec(className);
  if (spec.module === '' || spec.exportName === '')
    return `${quote(className, 80)}: write it as package#Export or ./file.js#Export`;
  if (!EXPORT_NAME.test(spec.exportName))
    return `${quote(className, 80)}: export name ${quote(spec.exportName, 40)} is not a JavaScript identifier`;
  if (spec.isFile) {
    if (!MODULE_EXTENSIONS.has(extname(spec.module)))
      return `${quote(className, 80)}: a handler file must end in .js, .mjs or .cjs`;
    return undefined;
  }
  if (!PACKAGE.test(spec.module) || isBuiltin(spec.module)) {
    return `${quote(className, 80)}: not a package name or a file path (./file.js#Export, /path/file.js#Export); URLs, node: builtins and inline code are not loaded`;
  }
  return undefined;
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
export interface LoadOptions {
  /** How long one module may take to import (default IMPORT_TIMEOUT_MS). */
  importTimeoutMs?: number;
}

export async function loadHandlerClass(
  config: HandlerConfig,
  fallbackParents: readonly string[] = [],
  options: LoadOptions = {},
): Promise<HandlerClass> {
  const spec = parseClassSpec(config.className);
  const fail = (what: string, cause?: unknown): GlueError =>
    new GlueError('HANDLER_LOAD', `class ${JSON.stringify(config.className)}: ${what}`, {
      handler: config.name,
      file: config.file,
      cause,
    });
  const refused = classSpecProblem(config.className);
  if (refused) throw new GlueError('HANDLER_LOAD', refused, { handler: config.name, file: config.file });

  let url: string;
  if (spec.isFile) {
    const path = resolvePath(config.dir, spec.module);
    // A FIFO or device would block the import forever.
    const notFile = regularFileProblem(path);
    if (notFile) throw fail(`${path} ${notFile}`);
    url = pathToFileURL(path).href;
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
      throw fail(
        `package ${JSON.stringify(spec.module)} is not installed where Glue can see it (looked from ${config.dir} and from the glue install); install it with npm/pnpm there`,
      );
    }
    url = found;
  }

  let mod: Record<string, unknown>;
  try {
    mod = await boundedImport(url, spec.module, options.importTimeoutMs ?? IMPORT_TIMEOUT_MS);
  } catch (err) {
    throw fail(`cannot import ${spec.module}: ${errorMessage(err)}${importHint(err)}`, err);
  }
  let exported = mod[spec.exportName];
  // A CommonJS module arrives as { default: module.exports }.
  if (exported === undefined && mod.default !== null && typeof mod.default === 'object') {
    exported = (mod.default as Record<string, unknown>)[spec.exportName];
  }
  if (exported === undefined) {
    const names = Object.keys(mod).filter((k) => k !== '__esModule');
    throw fail(
      `${spec.module} has no export ${JSON.stringify(spec.exportName)} (it exports: ${names.join(', ') || 'nothing'})`,
    );
  }
  if (!isHandlerClass(exported)) {
    throw fail(
      `${spec.module}#${spec.exportName} is not a handler class: it needs a constructor (agent, iniFile, ini) and a handle(event, containerId) method`,
    );
  }
  return exported;
}

/** What to do about an import failure Glue can explain. */
function importHint(err: unknown): string {
  const { code, message } = (err ?? {}) as { code?: unknown; message?: unknown };
  // require() in CommonJS: Node 20 has no loader hook for it, so core-hooks cannot lend the daemon's copy.
  if (code === 'MODULE_NOT_FOUND' && typeof message === 'string' && /'@glue\/core(\/contract)?'/.test(message))
    return " (a CommonJS handler must find @glue/core itself: `npm install @glue/core` beside it, or write it as an ES module, .mjs, which gets the daemon's copy)";
  return '';
}

/**
 * `import(url)` bounded in time, with `process.exit` refused while the module's top-level code runs
 * (a module that exits at import would hide every other problem and end Glue with its own code).
 */
async function boundedImport(url: string, name: string, timeoutMs: number): Promise<Record<string, unknown>> {
  // Restored exactly as it was (a function of `process`, which does not use `this`).
  // eslint-disable-next-line @typescript-eslint/unbound-method
  const exit = process.exit;
  let exitCalled: number | string | null | undefined;
  process.exit = (code?: number | string | null) => {
    exitCalled = code;
    throw new Error(`the module called process.exit(${code ?? ''}) while loading`);
  };
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Error(
              `${name} did not finish loading within ${timeoutMs / 1000} s (a top-level await that never settles?)`,
            ),
          ),
        timeoutMs,
      );
    });
    shareCore();
    const mod = (await Promise.race([import(url), timeout])) as Record<string, unknown>;
    if (exitCalled !== undefined) throw new Error(`the module called process.exit(${exitCalled ?? ''}) while loading`);
    return mod;
  } finally {
    clearTimeout(timer);
    process.exit = exit;
  }
}

/**
 * Loads and constructs every enabled handler. Every failure is collected as a problem naming the INI
 * file (and the [params] key for a ParamError), so all of them are reported at once.
 */
export async function loadHandlers(
  configs: readonly HandlerConfig[],
  agent: Agent,
  fallbackParents: readonly string[] = [],
  options: LoadOptions = {},
): Promise<{ handlers: LoadedHandler[]; problems: ConfigProblem[] }> {
  const handlers: LoadedHandler[] = [];
  const problems: ConfigProblem[] = [];
  for (const config of configs) {
    if (!config.enabled) continue;
    let Cls: HandlerClass;
    try {
      Cls = await loadHandlerClass(config, fallbackParents, options);
    } catch (err) {
      problems.push({
        file: config.file,
        section: 'handler',
        key: 'class',
        line: config.ini.lineOf('handler', 'class'),
        message: errorMessage(err),
      });
      continue;
    }
    try {
      const view = config.filter ? filteredAgent(agent, config.filter) : agent;
      handlers.push({ config, instance: new Cls(view, config.file, config.ini) });
    } catch (err) {
      // By code and fields, not instanceof: a handler installed beside Glue may bring its own copy of core.
      const param = err as Partial<ParamError> | undefined;
      if (param?.code === 'INVALID_PARAM' && typeof param.key === 'string') {
        const list: readonly ParamProblem[] = Array.isArray(param.problems)
          ? (param.problems as readonly ParamProblem[])
          : [{ key: param.key, reason: typeof param.reason === 'string' ? param.reason : errorMessage(err) }];
        for (const p of list)
          problems.push({
            file: config.file,
            section: 'params',
            key: p.key,
            line: config.ini.lineOf('params', p.key),
            message: p.reason,
          });
      } else {
        problems.push({ file: config.file, message: `${config.className}: cannot start: ${errorMessage(err)}` });
      }
    }
  }
  return { handlers, problems };
}

let coreShared = false;

/**
 * Installs core-hooks.js (once): handler modules that cannot find `@glue/core` get this daemon's copy.
 * Only from the build (dist/index.js beside dist/core-hooks.js); from src/ (tests) there is nothing to share.
 */
function shareCore(): void {
  if (coreShared) return;
  coreShared = true;
  const here = new URL(import.meta.url);
  const hooks = new URL('./core-hooks.js', here);
  if (!here.pathname.endsWith('.js') || !existsSync(fileURLToPath(hooks))) return;
  register(hooks, {
    data: {
      targets: {
        '@glue/core': new URL('./index.js', here).href,
        '@glue/core/contract': new URL('./contract.js', here).href,
      },
    },
  });
}
