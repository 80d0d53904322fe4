import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { freePort } from './etcd.js';
import { stopPid } from './processes.js';
import { waitFor } from './wait.js';

/** A private npm registry (verdaccio) on 127.0.0.1, with no uplink: it serves only what was published to it. */
export interface NpmRegistry {
  /** `http://127.0.0.1:PORT/` */
  url: string;
  dir: string;
  /**
   * Environment for npm/npx processes that see this registry only: a userconfig with the registry and
   * an auth token, HOME, cache and global prefix in `dir`, no npm_* variables of the calling process.
   */
  npmEnv(extra?: Record<string, string>): Record<string, string>;
  /** Where `npm i -g` puts bins. */
  globalBin: string;
  /** Publishes a package tarball (`package/package.json` inside) as its manifest says, over the registry's HTTP API. */
  publish(tarball: string, manifest: Record<string, unknown>): Promise<void>;
  stop(): Promise<void>;
}

function verdaccioBin(): string {
  try {
    const pkg = createRequire(import.meta.url).resolve('verdaccio/package.json');
    return join(dirname(pkg), 'bin', 'verdaccio');
  } catch {
    throw new Error('verdaccio not found: it is a dev dependency of @glue/testkit (run `pnpm install`)');
  }
}

/** Starts verdaccio on a free loopback port, its storage and config in a temp dir; fails loudly when it cannot. */
export async function startRegistry(): Promise<NpmRegistry> {
  const bin = verdaccioBin();
  const dir = await mkdtemp(join(tmpdir(), 'glue-registry-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/`;
  const config = join(dir, 'config.yaml');
  writeFileSync(
    config,
    [
      `storage: ${join(dir, 'storage')}`,
      'auth:',
      '  htpasswd:',
      `    file: ${join(dir, 'htpasswd')}`,
      '    max_users: 10',
      'uplinks: {}',
      'packages:',
      "  '**':",
      '    access: $all',
      '    publish: $authenticated',
      'log: { type: stdout, format: pretty, level: warn }',
      'max_body_size: 500mb',
      'publish:',
      '  allow_offline: true',
      '',
    ].join('\n'),
  );
  const logFile = join(dir, 'verdaccio.log');
  const log = openSync(logFile, 'a');
  const child: ChildProcess = spawn(process.execPath, [bin, '--config', config, '--listen', `127.0.0.1:${port}`], {
    stdio: ['ignore', log, log],
    env: { PATH: process.env.PATH ?? '', HOME: dir },
  });
  closeSync(log);
  const stop = async (): Promise<void> => {
    if (child.pid !== undefined) await stopPid(child.pid);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`verdaccio exited (${child.exitCode})`);
        return (await fetch(`${url}-/ping`, { signal: AbortSignal.timeout(1000) })).ok;
      },
      { timeoutMs: 30_000, intervalMs: 100, what: `verdaccio on ${url} (log: ${logFile})` },
    );
  } catch (err) {
    await stop();
    throw new Error(`${(err as Error).message}\n--- verdaccio log ---\n${readFileSync(logFile, 'utf8').slice(-2000)}`);
  }

  // One user; its token authenticates both npm publish and the HTTP publishes below.
  let token: string | undefined;
  try {
    const res = await fetch(`${url}-/user/org.couchdb.user:glue`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'glue', password: 'glue-test-password' }),
    });
    token = ((await res.json()) as { token?: string }).token;
    if (!res.ok || !token) throw new Error(`HTTP ${res.status}`);
  } catch (err) {
    await stop();
    throw new Error(`verdaccio on ${url}: creating the test user failed: ${(err as Error).message}`);
  }
  const home = join(dir, 'home');
  const prefix = join(dir, 'global');
  await mkdir(home, { recursive: true });
  const npmrc = join(dir, 'npmrc');
  const host = url.replace(/^http:/, '');
  writeFileSync(
    npmrc,
    [
      `registry=${url}`,
      `${host}:_authToken=${token}`,
      `cache=${join(dir, 'npm-cache')}`,
      `prefix=${prefix}`,
      'audit=false',
      'fund=false',
      'update-notifier=false',
      // Install scripts of third-party dependencies (cpu-features, ssh2's optional native builds) would
      // compile with node-gyp for a minute and may reach for Node's headers online; Glue has none.
      'ignore-scripts=true',
      'loglevel=warn',
      '',
    ].join('\n'),
  );
  // The caller's PATH without node_modules/.bin dirs (pnpm puts the workspace's there).
  const path = (process.env.PATH ?? '')
    .split(':')
    .filter((d) => d !== '' && !d.endsWith('/node_modules/.bin'))
    .join(':');
  const npmEnv = (extra: Record<string, string> = {}): Record<string, string> => ({
    PATH: `${join(prefix, 'bin')}:${path}`,
    HOME: home,
    npm_config_userconfig: npmrc,
    npm_config_globalconfig: join(dir, 'npmrc-global'),
    ...extra,
  });

  const publish = async (tarball: string, manifest: Record<string, unknown>): Promise<void> => {
    const name = String(manifest.name);
    const version = String(manifest.version);
    const data = await readFile(tarball);
    const file = `${basename(name)}-${version}.tgz`;
    const body = {
      _id: name,
      name,
      'dist-tags': { latest: version },
      versions: {
        [version]: {
          ...manifest,
          _id: `${name}@${version}`,
          dist: {
            shasum: createHash('sha1').update(data).digest('hex'),
            integrity: `sha512-${createHash('sha512').update(data).digest('base64')}`,
            tarball: `${url}${name}/-/${file}`,
          },
        },
      },
      _attachments: {
        [file]: { content_type: 'application/octet-stream', data: data.toString('base64'), length: data.length },
      },
    };
    const put = await fetch(`${url}${name.replace('/', '%2f')}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify(body),
    });
    if (!put.ok) throw new Error(`publishing ${name}@${version} to ${url}: ${put.status} ${await put.text()}`);
  };

  return { url, dir, npmEnv, globalBin: join(prefix, 'bin'), publish, stop };
}
