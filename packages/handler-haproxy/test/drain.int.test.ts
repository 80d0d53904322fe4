/**
 * Drain before stop: `docker stop` sends the container's stop signal (the engine's `kill` event) and
 * waits; from that event on, HAProxy sends the container no new request, while its app finishes what
 * it has. Two containers share a host under a steady client; one is stopped by `docker stop` and keeps
 * serving three seconds after SIGTERM (its page then says so): no request is lost, and the stopping
 * container answers no request once the kill event was applied. One killed with SIGKILL leaves at `die`.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type DockerEngine, freePort, httpGet, requireBinary, startDockerd, tempDir, waitFor } from '@glue/testkit';
import { startBalancer, type RunningBalancer } from './helpers.js';

let engine: DockerEngine;
let dir: { path: string; cleanup: () => Promise<void> };
let lb: RunningBalancer;
let url: string;
const HOST = 'drain.example.com';

/** busybox httpd serving its name; on SIGTERM its page says "draining-<name>", it serves 3 s more, then exits. */
const LINGERING = [
  'sh',
  '-c',
  [
    'mkdir -p /www',
    'echo "$GLUE_PAGE" > /www/index.html',
    'httpd -f -p 80 -h /www & pid=$!',
    `trap 'echo "draining-$GLUE_PAGE" > /www/index.html; sleep 3; kill $pid; exit 0' TERM`,
    'while true; do sleep 1 & wait $!; done',
  ].join('; '),
];

beforeAll(async () => {
  requireBinary('haproxy');
  engine = await startDockerd();
  dir = await tempDir('glue-lb-drain-');
  const port = await freePort();
  url = `http://127.0.0.1:${port}/`;
  lb = await startBalancer([
    '--docker-url',
    engine.url,
    '--mode',
    'managed',
    '--config-file',
    `${dir.path}/haproxy.cfg`,
    '--http-bind',
    `127.0.0.1:${port}`,
    '--debounce-ms',
    '5',
  ]);
});

afterAll(async () => {
  await lb?.stop();
  await engine?.stop();
  await dir?.cleanup();
});

/** Requests back to back until stopped: each answer with the time it came. */
function client(): { stop: () => Promise<Array<{ at: number; status: number; body: string }>> } {
  const answers: Array<{ at: number; status: number; body: string }> = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        const r = await httpGet(url, { host: HOST, timeoutMs: 5000 });
        answers.push({ at: Date.now(), status: r.status, body: r.body.trim() });
      } catch (err) {
        answers.push({ at: Date.now(), status: 0, body: (err as Error).message });
      }
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return answers;
    },
  };
}

it('docker stop: zero lost requests, and no new request reaches the stopping container after its kill event', async () => {
  await engine.run({ name: 'stay', labels: { glue_http_80_host: HOST } });
  await engine.run({ name: 'leave', labels: { glue_http_80_host: HOST }, cmd: LINGERING });
  await waitFor(
    async () => {
      const seen = new Set<string>();
      for (let i = 0; i < 10; i++) seen.add((await httpGet(url, { host: HOST })).body.trim());
      return seen.has('stay') && seen.has('leave');
    },
    { timeoutMs: 20_000, what: 'both containers in rotation' },
  );
  const c = client();
  await new Promise((r) => setTimeout(r, 300));
  const stopped = Date.now();
  await engine.cli(['stop', '-t', '10', 'leave']);
  const took = Date.now() - stopped;
  await new Promise((r) => setTimeout(r, 300));
  const answers = await c.stop();
  const lost = answers.filter((a) => a.status !== 200);
  const draining = answers.filter((a) => a.body === 'draining-leave');
  const lastDraining = draining.at(-1)?.at ?? stopped;
  console.log(
    `drain: docker stop took ${took} ms; ${answers.length} requests, ${lost.length} lost, ` +
      `${draining.length} answered by the stopping container after SIGTERM (the last ${lastDraining - stopped} ms after docker stop began)`,
  );
  expect(took).toBeGreaterThan(2500); // the app did linger
  expect(lost).toEqual([]);
  // Only requests already on their way while the kill event was being applied (ms), none later.
  expect(lastDraining - stopped).toBeLessThan(1000);
  expect(answers.filter((a) => a.at > stopped + 1000).every((a) => a.body === 'stay')).toBe(true);
});

it('docker kill (SIGKILL): the container leaves at die', async () => {
  await engine.run({ name: 'killed', labels: { glue_http_80_host: HOST } });
  await waitFor(
    async () => {
      for (let i = 0; i < 10; i++) if ((await httpGet(url, { host: HOST })).body.trim() === 'killed') return true;
      return false;
    },
    { timeoutMs: 20_000, what: 'the container in rotation' },
  );
  await engine.cli(['kill', 'killed']);
  await waitFor(
    async () => {
      for (let i = 0; i < 20; i++) if ((await httpGet(url, { host: HOST })).body.trim() !== 'stay') return false;
      return true;
    },
    { timeoutMs: 5_000, what: 'only "stay" answering after docker kill' },
  );
});
