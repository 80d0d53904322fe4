/**
 * The operations endpoint: `/metrics` (Prometheus text format), `/livez` (the event loop answers) and
 * `/readyz` (every readiness check passes; `?verbose` lists them). Off unless asked for
 * (`--http-addr`); an embedding service mounts `opsRequestHandler` in its own server instead.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import { GlueError } from './errors.js';
import type { ReadyCheck } from './glue.js';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';

export interface OpsSources {
  metrics: Metrics;
  readiness: () => Promise<ReadyCheck[]>;
}

/**
 * Answers `/metrics`, `/livez` and `/readyz` (GET or HEAD); resolves false, without answering, for
 * any other path, so a service can mount it beside its own routes.
 */
export function opsRequestHandler(
  sources: OpsSources,
): (req: IncomingMessage, res: ServerResponse) => Promise<boolean> {
  return async (req, res) => {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://ops');
    } catch {
      // A request target URL cannot read (`//`): not one of ours, and never an exception.
      return false;
    }
    const route = url.pathname;
    if (route !== '/metrics' && route !== '/livez' && route !== '/readyz') return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, 'text/plain', `${req.method ?? ''} not allowed: GET or HEAD\n`, { allow: 'GET, HEAD' });
      return true;
    }
    try {
      if (route === '/metrics') {
        send(res, 200, sources.metrics.registry.contentType, await sources.metrics.text());
      } else if (route === '/livez') {
        send(res, 200, 'text/plain', 'ok\n');
      } else {
        const checks = await sources.readiness();
        const failing = checks.filter((c) => c.problem !== undefined);
        const verbose = url.searchParams.has('verbose');
        const lines = verbose
          ? checks.map((c) => (c.problem === undefined ? `[+] ${c.name} ok` : `[-] ${c.name}: ${c.problem}`))
          : failing.map((c) => `[-] ${c.name}: ${c.problem ?? ''}`);
        const body = `${lines.join('\n')}${lines.length > 0 ? '\n' : ''}${failing.length === 0 ? 'ok' : 'not ready'}\n`;
        send(res, failing.length === 0 ? 200 : 503, 'text/plain', body);
      }
    } catch (err) {
      send(res, 500, 'text/plain', `${err instanceof Error ? err.message : String(err)}\n`);
    }
    return true;
  };
}

function send(
  res: ServerResponse,
  status: number,
  type: string,
  body: string,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', ...headers });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

/** `HOST:PORT` or `[IPv6]:PORT` (port 0: any free one); the reason it is not, otherwise. */
export function parseHttpAddr(value: string): { host: string; port: number } | { problem: string } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(value.trim());
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (!m || host === undefined)
    return { problem: `${JSON.stringify(value)} is not HOST:PORT (e.g. 127.0.0.1:9464 or [::1]:9464)` };
  if (!(port >= 0 && port <= 65535)) return { problem: `${JSON.stringify(value)}: port ${m[3]} is not 0-65535` };
  if (m[1] !== undefined && isIP(host) !== 6)
    return { problem: `${JSON.stringify(value)}: ${host} is not an IPv6 address` };
  if (m[2] !== undefined && isIP(host) === 0 && !/^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,252})$/.test(host))
    return { problem: `${JSON.stringify(value)}: ${JSON.stringify(host)} is not an IP address or host name` };
  return { host, port };
}

export interface OpsServer {
  /** `http://HOST:PORT` as bound (the real port when 0 was asked for). */
  url: string;
  close(): Promise<void>;
}

/** Serves the ops endpoint on `address` (`HOST:PORT`); rejects with an ENGINE_CONFIG-like error when it cannot bind. */
export async function startOpsServer(address: string, sources: OpsSources, logger: Logger): Promise<OpsServer> {
  const parsed = parseHttpAddr(address);
  if ('problem' in parsed) throw new GlueError('INVALID_PARAM', `--http-addr: ${parsed.problem}`);
  sources.metrics.withProcessMetrics();
  const handle = opsRequestHandler(sources);
  const server = createServer((req, res) => {
    handle(req, res)
      .then((handled) => {
        if (!handled) send(res, 404, 'text/plain', 'not found: /metrics, /livez, /readyz\n');
      })
      .catch(() => {
        // One bad request must never take the daemon down.
        if (!res.headersSent) send(res, 500, 'text/plain', 'internal error\n');
        else res.destroy();
      });
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) =>
      reject(new GlueError('INVALID_PARAM', `--http-addr ${address}: cannot listen: ${err.message}`, { cause: err })),
    );
    server.listen(parsed.port, parsed.host, () => resolve());
  });
  const bound = server.address();
  const port = typeof bound === 'object' && bound ? bound.port : parsed.port;
  const host = parsed.host.includes(':') ? `[${parsed.host}]` : parsed.host;
  const url = `http://${host}:${port}`;
  const loopback = /^(127\.|::1$|localhost$)/.test(parsed.host);
  if (!loopback)
    logger.warn(
      { url },
      `the ops endpoint listens on ${url}, beyond loopback: /metrics tells anyone who can reach it what runs here`,
    );
  logger.info({ url }, `ops endpoint on ${url}: /metrics, /livez, /readyz`);
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
