import { request } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { TLSSocket } from 'node:tls';

export interface HttpResult {
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
}

/** One HTTP GET with an explicit Host header (loopback or a test container only). */
export function httpGet(url: string, options: { host?: string; timeoutMs?: number } = {}): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = request(
      {
        hostname: u.hostname,
        port: u.port,
        path: `${u.pathname}${u.search}`,
        method: 'GET',
        headers: options.host ? { host: options.host } : {},
        agent: false,
        timeout: options.timeoutMs ?? 5000,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

export interface HttpsResult extends HttpResult {
  /** The certificate the server presented: its subject CN, SAN and SHA-256 fingerprint. */
  cert: { cn: string; san: string; fingerprint: string };
  /** Whether it verified against `ca` for the SNI name (rejectUnauthorized off only). */
  authorized: boolean;
}

/**
 * GET over TLS with SNI `servername` (the Host header too, unless `host` says otherwise). With `ca`
 * the server's certificate must verify against it for that name; `insecure` accepts any (to look at
 * a default certificate) and says whether it would have verified.
 */
export function httpsGet(
  url: string,
  options: { servername: string; host?: string; ca?: string; insecure?: boolean; timeoutMs?: number },
): Promise<HttpsResult> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = httpsRequest(
      {
        hostname: u.hostname,
        port: u.port,
        path: `${u.pathname}${u.search}`,
        method: 'GET',
        servername: options.servername,
        headers: { host: options.host ?? options.servername },
        agent: false,
        ...(options.ca ? { ca: options.ca } : {}),
        rejectUnauthorized: options.insecure !== true,
        timeout: options.timeoutMs ?? 5000,
      },
      (res) => {
        const socket = res.socket as TLSSocket;
        const peer = socket.getPeerCertificate();
        const cert = {
          cn: String(peer.subject?.CN ?? ''),
          san: peer.subjectaltname ?? '',
          fingerprint: peer.fingerprint256 ?? '',
        };
        const authorized = socket.authorized;
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers, cert, authorized }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET ${url} (SNI ${options.servername}) timed out`)));
    req.on('error', reject);
    req.end();
  });
}
