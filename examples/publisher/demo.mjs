#!/usr/bin/env node
// A walkthrough that runs as-is (after `bash scripts/setup.sh && pnpm build`), on a private etcd and a
// private Docker engine, never the machine's own: node examples/publisher/demo.mjs
// It loads docker-glue.d/publish.ini (endpoints pointed at the private etcd), then shows keys appearing,
// vanishing, surviving an etcd outage and going away on a clean stop.
import { mkdtempSync, readFileSync, rmSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const here = fileURLToPath(new URL('.', import.meta.url));
const { createGlue, createLogger } = await import(join(root, 'packages/core/dist/index.js'));
const { Reader } = await import(join(root, 'packages/publisher-etcd/dist/index.js'));
const { startDockerd, startEtcd, waitFor } = await import(join(root, 'packages/testkit/dist/index.js'));

const step = (text) => console.log(`\n== ${text}`);
const [engine, etcd] = await Promise.all([startDockerd(), startEtcd()]);
const conf = mkdtempSync(join(tmpdir(), 'glue-publisher-demo-'));
let glue;
const reader = new Reader({ endpoints: etcd.endpoint });
const show = async () => {
  const keys = await etcd.keys('/glue/');
  for (const [k, v] of Object.entries(keys))
    console.log(`  ${k}  lease=${BigInt(v.lease).toString(16)}  ${v.value.slice(0, 70)}…`);
  if (Object.keys(keys).length === 0) console.log('  (no keys)');
};
const settle = async (want) =>
  waitFor(async () => (await reader.containers()).length === want, {
    timeoutMs: 30_000,
    what: `${want} containers in etcd`,
  });
try {
  mkdirSync(join(conf, 'docker-glue.d'));
  const ini = readFileSync(join(here, 'docker-glue.d', 'publish.ini'), 'utf8')
    .replace(/^endpoints=.*$/m, `endpoints=${etcd.endpoint}`)
    .replace(/^ttl=.*$/m, 'ttl=10');
  writeFileSync(join(conf, 'docker-glue.d', 'publish.ini'), ini);
  glue = createGlue({
    configDirs: [join(conf, 'docker-glue.d')],
    dockerUrl: engine.url,
    resolveFrom: [pathToFileURL(join(root, 'packages/cli/package.json')).href],
    logger: createLogger({ level: process.env.GLUE_LOG ?? 'warn' }),
  });

  step('two containers, one serving shop.example.com; Glue starts');
  const shop = await engine.run({ name: 'shop1', labels: { glue_http_80_host: 'shop.example.com' } });
  await engine.run({ name: 'worker1', cmd: ['sleep', '3600'] });
  await glue.start();
  await settle(2);
  await show();
  console.log(
    `  reader.serving('shop.example.com') -> ${(await reader.serving('shop.example.com')).map((b) => `${b.name} ${b.addresses.bridge}:${b.port}`).join(', ')}`,
  );

  step('etcd is killed; meanwhile shop1 is removed and shop2 starts');
  await etcd.kill();
  await engine.cli(['rm', '-f', shop.id]);
  await engine.run({ name: 'shop2', labels: { glue_http_80_host: 'shop.example.com' } });
  console.log('  (Glue keeps running; the publisher logs one warning and retries with backoff)');

  step('etcd is back: the keys match the engine exactly');
  await etcd.restart();
  await waitFor(
    async () =>
      (await reader.containers())
        .map((c) => c.name)
        .sort()
        .join() === 'shop2,worker1',
    { timeoutMs: 30_000, what: 'shop2 and worker1' },
  );
  await show();

  step('Glue stops cleanly: the lease is revoked, every key goes at once');
  await glue.stop();
  await show();
} finally {
  await glue?.stop();
  await reader.close();
  await Promise.allSettled([engine.stop(), etcd.stop()]);
  rmSync(conf, { recursive: true, force: true });
}
