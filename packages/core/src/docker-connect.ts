import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import Dockerode from 'dockerode';

export const DEFAULT_DOCKER_SOCKET = '/var/run/docker.sock';

export interface DockerEndpoint {
  /** As an operator would write it, for log and error lines: `unix:///var/run/docker.sock`. */
  address: string;
  options: Dockerode.DockerOptions;
}

/**
 * Reads a Docker address the way the docker CLI does: `--docker-url`, else DOCKER_HOST, else the
 * default socket. `unix://`, `tcp://`, `http(s)://`; TLS from DOCKER_TLS_VERIFY / DOCKER_CERT_PATH.
 */
export function dockerEndpoint(url: string | undefined, env: NodeJS.ProcessEnv = process.env): DockerEndpoint {
  const raw = (url ?? env.DOCKER_HOST ?? '').trim() || `unix://${DEFAULT_DOCKER_SOCKET}`;
  if (raw.startsWith('/')) return { address: `unix://${raw}`, options: { socketPath: raw } };
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new Error(`invalid Docker address ${JSON.stringify(raw)}: use unix:///path/docker.sock or tcp://host:port`);
  }
  if (parsed.protocol === 'unix:') {
    const socketPath = decodeURIComponent(parsed.pathname);
    return { address: `unix://${socketPath}`, options: { socketPath } };
  }
  if (parsed.protocol !== 'tcp:' && parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new Error(`invalid Docker address ${JSON.stringify(raw)}: unsupported scheme ${parsed.protocol}`);
  }
  const tlsVerify = (env.DOCKER_TLS_VERIFY ?? '') !== '' && env.DOCKER_TLS_VERIFY !== '0';
  const tls = tlsVerify || parsed.protocol === 'https:';
  const port = parsed.port === '' ? (tls ? 2376 : 2375) : Number(parsed.port);
  const options: Dockerode.DockerOptions = { host: parsed.hostname, port, protocol: tls ? 'https' : 'http' };
  if (tls) {
    const certPath = env.DOCKER_CERT_PATH ?? join(homedir(), '.docker');
    try {
      options.ca = readFileSync(join(certPath, 'ca.pem'));
      options.cert = readFileSync(join(certPath, 'cert.pem'));
      options.key = readFileSync(join(certPath, 'key.pem'));
    } catch (err) {
      throw new Error(`Docker TLS: cannot read ca.pem/cert.pem/key.pem in ${certPath} (DOCKER_CERT_PATH): ${(err as Error).message}`);
    }
  }
  return { address: `${tls ? 'https' : 'tcp'}://${parsed.hostname}:${port}`, options };
}

export function createDocker(endpoint: DockerEndpoint): Dockerode {
  return new Dockerode(endpoint.options);
}
