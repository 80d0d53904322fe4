import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireBinary } from './binaries.js';
import { freePort } from './etcd.js';
import { stopPid } from './processes.js';
import { waitFor } from './wait.js';

/** A private Prometheus on 127.0.0.1 scraping the given targets every `intervalSeconds`. */
export interface PrometheusServer {
  url: string;
  dir: string;
  /** An instant query: each series' labels and value. */
  query(promql: string): Promise<{ metric: Record<string, string>; value: number }[]>;
  /** Waits until every target was scraped and is up. */
  targetsUp(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/** Starts Debian's `prometheus` with its data in a temp dir; fails loudly when it is not installed. */
export async function startPrometheus(targets: readonly string[], intervalSeconds = 1): Promise<PrometheusServer> {
  const bin = requireBinary('prometheus');
  const dir = await mkdtemp(join(tmpdir(), 'glue-prometheus-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const config = join(dir, 'prometheus.yml');
  writeFileSync(
    config,
    [
      'global:',
      `  scrape_interval: ${intervalSeconds}s`,
      `  scrape_timeout: ${intervalSeconds}s`,
      'scrape_configs:',
      '  - job_name: glue',
      '    static_configs:',
      `      - targets: [${targets.map((t) => JSON.stringify(t)).join(', ')}]`,
      '',
    ].join('\n'),
  );
  const logFile = join(dir, 'prometheus.log');
  const log = openSync(logFile, 'a');
  const child = spawn(
    bin,
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', log, log] },
  );
  closeSync(log);
  const stop = async (): Promise<void> => {
    if (child.pid !== undefined) await stopPid(child.pid);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`prometheus exited (${child.exitCode})`);
        return (await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1000) })).ok;
      },
      { timeoutMs: 30_000, intervalMs: 100, what: `prometheus on ${url}` },
    );
  } catch (err) {
    const tail = readFileSync(logFile, 'utf8').slice(-2000);
    await stop();
    throw new Error(`${(err as Error).message}\n--- prometheus log ---\n${tail}`);
  }
  const api = async <T>(path: string): Promise<T> => {
    const res = await fetch(`${url}${path}`, { signal: AbortSignal.timeout(5000) });
    const body = (await res.json()) as { status: string; data: T; error?: string };
    if (body.status !== 'success') throw new Error(`prometheus ${path}: ${body.error ?? res.status}`);
    return body.data;
  };
  return {
    url,
    dir,
    query: async (promql) => {
      const data = await api<{ result: { metric: Record<string, string>; value: [number, string] }[] }>(
        `/api/v1/query?query=${encodeURIComponent(promql)}`,
      );
      return data.result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
    },
    targetsUp: async (timeoutMs = 20_000) => {
      await waitFor(
        async () => {
          const data = await api<{ activeTargets: { health: string; scrapeUrl: string; lastError: string }[] }>(
            '/api/v1/targets',
          );
          return data.activeTargets.length === targets.length && data.activeTargets.every((t) => t.health === 'up');
        },
        { timeoutMs, intervalMs: 200, what: `prometheus targets ${targets.join(', ')} up` },
      );
    },
    stop,
  };
}
