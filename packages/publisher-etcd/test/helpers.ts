import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createGlue, type Glue, type InlineHandler } from '@glue/core';
import type { DockerEngine, EtcdServer } from '@glue/testkit';
import { waitFor } from '@glue/testkit';

/** Where handler packages resolve from, as the CLI does from its own install. */
export const RESOLVE_FROM = [
  pathToFileURL(join(import.meta.dirname, '..', 'package.json')).href,
  pathToFileURL(join(import.meta.dirname, '..', '..', 'cli', 'package.json')).href,
];

/** Writes `<dir>/<name>.d/publish.ini` and returns the config dir. */
export function publisherConfig(
  dir: string,
  name: string,
  params: Record<string, string>,
  className = '@glue/publisher-etcd#Publisher',
): string {
  const conf = join(dir, `${name}.d`);
  mkdirSync(conf, { recursive: true });
  const lines = [
    '[handler]',
    `class=${className}`,
    'events=all,none',
    '',
    '[params]',
    ...Object.entries(params).map(([k, v]) => `${k}=${v}`),
  ];
  writeFileSync(join(conf, 'publish.ini'), `${lines.join('\n')}\n`);
  return conf;
}

export async function startGlue(engine: DockerEngine, configDir: string, handlers?: InlineHandler[]): Promise<Glue> {
  const glue = createGlue({
    configDirs: [configDir],
    dockerUrl: engine.url,
    resolveFrom: RESOLVE_FROM,
    ...(handlers ? { handlers } : {}),
    noneDebounceMs: 50,
  });
  await glue.start();
  return glue;
}

/** Container ids published for `host`, read with etcdctl (not with the code under test). */
export async function publishedIds(etcd: EtcdServer, host: string, prefix = '/glue'): Promise<string[]> {
  const keys = await etcd.keys(`${prefix}/hosts/${encodeURIComponent(host)}/containers/`);
  return Object.keys(keys)
    .map((k) => decodeURIComponent(k.split('/').pop() ?? ''))
    .sort();
}

/** Ids of the containers the engine runs now. */
export async function runningIds(engine: DockerEngine): Promise<string[]> {
  return (await engine.docker.listContainers()).map((c) => c.Id).sort();
}

/** Waits until etcd holds exactly `expected` for `host`; fails with both lists. */
export async function expectPublished(
  etcd: EtcdServer,
  host: string,
  expected: () => string[] | Promise<string[]>,
  timeoutMs = 20_000,
  prefix = '/glue',
): Promise<void> {
  let last: { have: string[]; want: string[] } = { have: [], want: [] };
  await waitFor(
    async () => {
      const want = [...(await expected())].sort();
      const have = await publishedIds(etcd, host, prefix);
      last = { have, want };
      return JSON.stringify(have) === JSON.stringify(want);
    },
    { timeoutMs, intervalMs: 100, what: `etcd keys of ${host}` },
  ).catch((err: Error) => {
    throw new Error(`${err.message}\n  in etcd: ${JSON.stringify(last.have)}\n  wanted:  ${JSON.stringify(last.want)}`);
  });
}
