#!/usr/bin/env node
// The docker-glue README's load-balancer walkthrough, runnable as-is (after `bash scripts/setup.sh &&
// pnpm build`) on a private Docker engine and a private HAProxy on a loopback port, never the machine's
// own: node examples/lb/demo.mjs
// It loads docker-glue.d/lb.ini (config-file and http-bind pointed at a temp dir and a free port), starts
// the README's four containers and shows requests with their Host headers reaching the right one.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const here = fileURLToPath(new URL('.', import.meta.url));
const { createGlue, createLogger } = await import(join(root, 'packages/core/dist/index.js'));
const { startDockerd, freePort, httpGet, waitFor } = await import(join(root, 'packages/testkit/dist/index.js'));

const step = (text) => console.log(`\n== ${text}`);
const engine = await startDockerd();
const conf = mkdtempSync(join(tmpdir(), 'glue-lb-demo-'));
const port = await freePort();
let glue;
const curl = async (host, path = '/') => {
  const r = await httpGet(`http://127.0.0.1:${port}${path}`, { host });
  console.log(
    `  curl -H 'Host: ${host}' http://127.0.0.1:${port}${path}  ->  ${r.status} ${r.body.trim().split('\n')[0].slice(0, 60)}`,
  );
  return r;
};
/** busybox httpd serving its name at / plus the given files. */
const serve = (files) => [
  'sh',
  '-c',
  [
    'mkdir -p /www',
    'echo "$GLUE_PAGE" > /www/index.html',
    ...Object.entries(files).flatMap(([p, b]) => [`mkdir -p "/www$(dirname ${p})"`, `echo '${b}' > /www${p}`]),
    'exec httpd -f -p 80 -h /www',
  ].join(' && '),
];
try {
  mkdirSync(join(conf, 'docker-glue.d'));
  const ini = readFileSync(join(here, 'docker-glue.d', 'lb.ini'), 'utf8')
    .replace(/^config-file=.*$/m, `config-file=${join(conf, 'run', 'haproxy.cfg')}`)
    .replace(/^http-bind=.*$/m, `http-bind=127.0.0.1:${port}`);
  writeFileSync(join(conf, 'docker-glue.d', 'lb.ini'), ini);
  glue = createGlue({
    configDirs: [join(conf, 'docker-glue.d')],
    dockerUrl: engine.url,
    resolveFrom: [pathToFileURL(join(root, 'packages/cli/package.json')).href],
    logger: createLogger({ level: process.env.GLUE_LOG ?? 'warn' }),
  });
  await glue.start();

  step("the README's four containers (docker run -d --name wp1 -l glue_http_80_host=wp1.example.com ...)");
  await engine.run({ name: 'wp1', labels: { glue_http_80_host: 'wp1.example.com' } });
  await engine.run({ name: 'wp2', labels: { glue_http_80_host: 'wp2.example.com' } });
  await engine.run({
    name: 'os-ui1',
    labels: {
      glue_http_80_host: 'openstack.example.com',
      glue_http_80_prefix: 'dashboard/horizon',
      glue_http_80_strip_prefix: '1',
    },
    cmd: serve({ '/x.txt': 'os-ui1 received /x.txt' }),
  });
  await engine.run({
    name: 'os-id1',
    labels: { glue_http_80_host: 'openstack.example.com', glue_http_80_prefix: 'identity/keystone' },
    cmd: serve({ '/identity/keystone/index.html': 'os-id1 received /identity/keystone/' }),
  });
  await waitFor(
    async () =>
      (await httpGet(`http://127.0.0.1:${port}/identity/keystone/`, { host: 'openstack.example.com' })).status === 200,
    { timeoutMs: 20_000, what: 'routes' },
  );
  await curl('wp1.example.com');
  await curl(`WP2.example.com:${port}`);
  await curl('openstack.example.com', '/dashboard/horizon/x.txt?a=1');
  await curl('openstack.example.com', '/identity/keystone/');
  await curl('openstack.example.com', '/dashboard/horizonX');

  step('the generated haproxy.cfg (routing part)');
  const cfg = readFileSync(join(conf, 'run', 'haproxy.cfg'), 'utf8');
  console.log(
    cfg
      .split('\n')
      .filter((l) => /use_backend|replace-path|^\s+server /.test(l))
      .map((l) => `  ${l.trim()}`)
      .join('\n'),
  );

  step('a second wp1 joins: runtime API, no reload; then wp2 is removed');
  await engine.run({ name: 'wp1b', labels: { glue_http_80_host: 'wp1.example.com' } });
  await waitFor(
    async () => (await httpGet(`http://127.0.0.1:${port}/`, { host: 'wp1.example.com' })).body.includes('wp1b'),
    { timeoutMs: 10_000, what: 'wp1b' },
  );
  await curl('wp1.example.com');
  await curl('wp1.example.com');
  await engine.cli(['rm', '-f', 'wp2']);
  await waitFor(async () => (await httpGet(`http://127.0.0.1:${port}/`, { host: 'wp2.example.com' })).status === 503, {
    timeoutMs: 10_000,
    what: 'wp2 gone',
  });
  await curl('wp2.example.com');

  step('a crafted label is refused (see the warning), everything else keeps working');
  await engine.run({ name: 'evil', labels: { glue_http_80_host: 'evil.example.com\nbackend x' } });
  await new Promise((r) => setTimeout(r, 500));
  await curl('wp1.example.com');
} finally {
  await glue?.stop();
  await engine.stop();
  rmSync(conf, { recursive: true, force: true });
}
