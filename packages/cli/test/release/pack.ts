/**
 * What the release smoke test publishes: the workspace's publishable packages packed by `pnpm pack`
 * (exactly what `pnpm publish` would upload), and every third-party package they need at run time,
 * taken from the workspace's installed tree (the versions the lockfile pins), so that the private
 * registry needs no uplink and the test reaches nothing but loopback.
 */
import { existsSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

export const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));

export interface Packed {
  name: string;
  version: string;
  tarball: string;
  manifest: Record<string, unknown>;
}

type Manifest = Record<string, unknown> & {
  name: string;
  version: string;
  private?: boolean;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
};

const readManifest = (dir: string): Manifest => JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Manifest;

/** The directories of the workspace packages that are published (not private). */
export function publishableDirs(): string[] {
  const base = join(ROOT, 'packages');
  return readdirSync(base)
    .map((d) => join(base, d))
    .filter((d) => existsSync(join(d, 'package.json')) && readManifest(d).private !== true);
}

/** `pnpm pack` of each publishable package (prepack runs, `workspace:` ranges become versions). */
export async function packWorkspace(dest: string): Promise<Packed[]> {
  return Promise.all(
    publishableDirs().map(async (dir) => {
      const { stdout } = await execa('pnpm', ['pack', '--pack-destination', dest], { cwd: dir });
      const tarball = stdout.trim().split('\n').at(-1) ?? '';
      if (!tarball.endsWith('.tgz')) throw new Error(`pnpm pack in ${dir} printed no tarball:\n${stdout}`);
      const manifest = JSON.parse((await execa('tar', ['-xOzf', tarball, 'package/package.json'])).stdout) as Manifest;
      return { name: manifest.name, version: manifest.version, tarball, manifest };
    }),
  );
}

/** Finds `name` from `dir` the way Node does: `<ancestor>/node_modules/<name>` for each ancestor. */
function locate(name: string, dir: string): string | undefined {
  for (let at = dir; ; at = dirname(at)) {
    const candidate = join(at, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return realpathSync(candidate);
    if (dirname(at) === at) return undefined;
  }
}

/**
 * Every third-party package reachable from `dirs` through dependencies, optional and peer
 * dependencies (as installed in the workspace; `@glue/*` excluded), packed as npm tarballs.
 */
export async function packDependencies(dirs: readonly string[], dest: string): Promise<Packed[]> {
  const found = new Map<string, string>(); // name@version -> dir
  const visit = (dir: string): void => {
    const m = readManifest(dir);
    const required = Object.keys(m.dependencies ?? {});
    const optional = [...Object.keys(m.optionalDependencies ?? {}), ...Object.keys(m.peerDependencies ?? {})];
    for (const name of [...required, ...optional]) {
      if (name.startsWith('@glue/')) continue;
      const at = locate(name, dir);
      if (at === undefined) {
        if (required.includes(name)) throw new Error(`${m.name}: dependency ${name} is not installed (from ${dir})`);
        continue;
      }
      const dep = readManifest(at);
      const key = `${dep.name}@${dep.version}`;
      if (found.has(key)) continue;
      found.set(key, at);
      visit(at);
    }
  };
  for (const dir of dirs) visit(dir);
  return Promise.all(
    [...found.values()].map(async (dir) => {
      const manifest = readManifest(dir);
      const tarball = join(dest, `${manifest.name.replace('/', '-')}-${manifest.version}.tgz`);
      await execa('tar', [
        '-czf',
        tarball,
        '--exclude=./node_modules',
        '--hard-dereference', // the pnpm store hard-links equal files; npm drops link entries
        '--owner=0',
        '--group=0',
        '--transform',
        's,^\\.,package,',
        '-C',
        dir,
        '.',
      ]);
      return { name: manifest.name, version: manifest.version, tarball, manifest };
    }),
  );
}
