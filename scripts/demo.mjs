#!/usr/bin/env node
// `pnpm demo`: Glue's main job, end to end, on this machine. Starts a private Docker engine (its own
// socket, bridge and temp dir; the system's Docker is never touched), runs `glue -w` with the handlers
// in examples/docker-glue.d plus examples/lb's HAProxy handler (its config file in a temp dir, HTTP on a
// free loopback port; the system's HAProxy is never touched), starts a container labelled
// glue_http_80_host=demo.example.com, asks HAProxy for that host, stops and removes the container and
// shows what the script handler recorded. With --keep it keeps watching until Ctrl-C, so you can
// `DOCKER_HOST=... docker run ...` yourself.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = join(root, 'packages/cli/dist/bin/glue.js');
const kit = join(root, 'packages/testkit/dist/index.js');
if (!existsSync(bin) || !existsSync(kit)) {
  console.error('demo: Glue is not built yet; run `bash scripts/setup.sh` (or `pnpm install && pnpm build`) first');
  process.exit(1);
}
const { freePort, httpGet, requireBinary, startDockerd, tempDir, waitFor } = await import(kit);
const keep = process.argv.includes('--keep');

const say = (text) => console.log(`\n\x1b[1m== ${text}\x1b[0m`);
requireBinary('haproxy');
const engine = await startDockerd();
const tmp = await tempDir('glue-demo-');
const log = join(tmp.path, 'test-handler.log');
// examples/lb/docker-glue.d/lb.ini with its files in the temp dir and HTTP on a free loopback port.
const port = await freePort();
const lbDir = join(tmp.path, 'lb.d');
mkdirSync(lbDir);
writeFileSync(
  join(lbDir, 'lb.ini'),
  readFileSync(join(root, 'examples/lb/docker-glue.d/lb.ini'), 'utf8')
    .replace(/^config-file=.*$/m, `config-file=${join(tmp.path, 'haproxy', 'haproxy.cfg')}`)
    .replace(/^http-bind=.*$/m, `http-bind=127.0.0.1:${port}`),
);
/** What `curl -H 'Host: demo.example.com' http://127.0.0.1:PORT/` gets. */
const curl = async (host) => {
  const r = await httpGet(`http://127.0.0.1:${port}/`, { host });
  console.log(`curl -H 'Host: ${host}' http://127.0.0.1:${port}/  ->  ${r.status} ${r.body.trim().split('\n')[0]}`);
  return r;
};
let glue;
const cleanup = async () => {
  if (glue && glue.exitCode === null) {
    glue.kill('SIGTERM');
    await new Promise((r) => glue.once('exit', r));
  }
  await engine.stop();
  await tmp.cleanup();
};
try {
  say(`private Docker engine at ${engine.url}`);
  const args = ['-w', '-c', join(root, 'examples/docker-glue.d'), '-c', lbDir, '--docker-url', engine.url];
  say(`glue ${args.join(' ')}`);
  glue = spawn(process.execPath, [bin, ...args], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, GLUE_TEST_LOG: log },
  });
  const lines = () => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : []);
  await waitFor(() => lines().length > 0, { timeoutMs: 20_000, what: 'the start-up none event' });
  say('docker run -d --label glue_http_80_host=demo.example.com glue-test/busybox httpd');
  const c = await engine.run({ name: 'glue-demo-web', labels: { glue_http_80_host: 'demo.example.com' } });
  await waitFor(() => lines().some((l) => l.includes(c.id) && l.includes('[start]')), {
    timeoutMs: 20_000,
    what: 'start handled',
  });
  await waitFor(async () => (await httpGet(`http://127.0.0.1:${port}/`, { host: 'demo.example.com' })).status === 200, {
    timeoutMs: 20_000,
    what: 'HAProxy routing demo.example.com',
  });
  say('HAProxy, configured by Glue from the label, routes the host to the container:');
  await curl('demo.example.com');
  await curl('other.example.com');
  say('docker stop glue-demo-web');
  await engine.cli(['stop', '-t', '1', c.id]);
  await waitFor(async () => (await httpGet(`http://127.0.0.1:${port}/`, { host: 'demo.example.com' })).status === 503, {
    timeoutMs: 20_000,
    what: 'demo.example.com gone from HAProxy',
  });
  await curl('demo.example.com');
  say('docker rm glue-demo-web');
  await engine.cli(['rm', '-f', c.id]);
  await waitFor(() => lines().some((l) => l.includes(c.id) && l.includes('[destroy]')), {
    timeoutMs: 20_000,
    what: 'destroy handled',
  });
  say(`what examples/handler-scripts/test-handler.sh recorded (${log}):`);
  console.log(lines().join('\n'));
  if (keep) {
    say(
      `still watching; try: DOCKER_HOST=${engine.url} docker run -d -l glue_http_80_host=x.example.com glue-test/busybox httpd -f -p 80\n` +
        `   then: curl -H 'Host: x.example.com' http://127.0.0.1:${port}/   (Ctrl-C to stop)`,
    );
    await new Promise((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
  }
  say('done: stopping glue (and the HAProxy it runs) and the private engine');
} catch (err) {
  console.error(`demo failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
