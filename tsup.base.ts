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
  };
}
