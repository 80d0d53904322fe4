import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Options } from 'tsup';

/** Shared build settings: every package builds ESM + type declarations for Node 20. */
export function packageBuild(entry: Record<string, string> | string[], extra: Partial<Options> = {}): Options {
  return {
    entry,
    format: ['esm'],
    target: 'node20',
    platform: 'node',
    dts: true,
    sourcemap: true,
    clean: true,
    splitting: false,
    ...extra,
    // Every package knows its own version (`--version` of its commands), from the package.json tsup runs in.
    define: { __GLUE_VERSION__: JSON.stringify(packageVersion()), ...extra.define },
  };
}

function packageVersion(): string {
  return (JSON.parse(readFileSync(join(process.cwd(), 'package.json'), 'utf8')) as { version: string }).version;
}
