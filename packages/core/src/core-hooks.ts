/**
 * Module customization hooks (`module.register`) the handler loader installs before it imports the
 * first handler module: a handler that imports `@glue/core` (or `@glue/core/contract`) and cannot find
 * a copy of its own (a `.js` file beside an INI in a directory without node_modules, a package
 * installed without its peer) gets the running daemon's copy instead of ERR_MODULE_NOT_FOUND. A
 * handler that has its own copy keeps it. Standalone: it runs on the loader thread and imports nothing.
 */
import type { InitializeHook, ResolveHook } from 'node:module';

let targets: Readonly<Record<string, string>> = {};

export const initialize: InitializeHook<{ targets: Record<string, string> }> = (data) => {
  targets = data.targets;
};

export const resolve: ResolveHook = async (specifier, context, nextResolve) => {
  try {
    return await nextResolve(specifier, context);
  } catch (err) {
    const url = targets[specifier];
    if (url === undefined || (err as { code?: unknown }).code !== 'ERR_MODULE_NOT_FOUND') throw err;
    return { url, format: 'module', shortCircuit: true };
  }
};
