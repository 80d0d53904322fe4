import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import Dockerode from 'dockerode';
import { errorMessage, GlueError, printable, quote } from './errors.js';
import { FileReadError, readRegularFile } from './files.js';

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
  const from =
    url !== undefined
      ? '--docker-url'
      : env.DOCKER_HOST !== undefined && env.DOCKER_HOST.trim() !== ''
        ? 'DOCKER_HOST'
        : 'default';
  const bad = (why: string, cause?: unknown): GlueError =>
    new GlueError(
      'ENGINE_CONFIG',
      `invalid Docker address ${quote(raw)} (${from}): ${why}; use unix:///path/docker.sock or tcp://host:port`,
      { cause },
    );
  // eslint-disable-next-line no-control-regex -- finding them is the point
  if (/[\u0000-\u001f\u007f]/.test(raw)) throw bad('it contains a control character');
  if (raw.startsWith('/')) return { address: `unix://${raw}`, options: { socketPath: raw } };
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch (err) {
    throw bad('not a URL', err);
  }
  if (parsed.protocol === 'unix:') {
    // unix://relative/x.sock would put "relative" in the host and connect to /x.sock.
    if (parsed.host !== '')
      throw bad(
        `a unix address takes an absolute path after unix:// (unix:///${parsed.host}${parsed.pathname} for /${parsed.host}${parsed.pathname})`,
      );
    let socketPath: string;
    try {
      socketPath = decodeURIComponent(parsed.pathname);
    } catch (err) {
      throw bad('a %-escape in the path is malformed', err);
    }
    if (!isAbsolute(socketPath) || socketPath === '/') throw bad('the socket path is missing');
    if (socketPath.includes('\0')) throw bad('the socket path contains a NUL');
    return { address: `unix://${socketPath}`, options: { socketPath } };
  }
  if (parsed.protocol !== 'tcp:' && parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw bad(`unsupported scheme ${printable(parsed.protocol.replace(/:$/, ''), 20)}`);
  }
  if (parsed.hostname === '') throw bad('the host is missing');
  const tlsVerify = (env.DOCKER_TLS_VERIFY ?? '') !== '' && env.DOCKER_TLS_VERIFY !== '0';
  const tls = tlsVerify || parsed.protocol === 'https:';
  const port = parsed.port === '' ? (tls ? 2376 : 2375) : Number(parsed.port);
  const options: Dockerode.DockerOptions = { host: parsed.hostname, port, protocol: tls ? 'https' : 'http' };
  if (tls) {
    const certPath = env.DOCKER_CERT_PATH ?? join(homedir(), '.docker');
    const why = tlsVerify ? 'DOCKER_TLS_VERIFY is set' : `${parsed.protocol.replace(/:$/, '')}:// address`;
    for (const [field, file] of [
      ['ca', 'ca.pem'],
      ['cert', 'cert.pem'],
      ['key', 'key.pem'],
    ] as const) {
      const path = join(certPath, file);
      try {
        // Never a FIFO or a device (a read that blocks forever), never more than 1 MiB.
        options[field] = readRegularFile(path);
      } catch (err) {
        const reason = err instanceof FileReadError ? err.message : errorMessage(err);
        throw new GlueError(
          'ENGINE_CONFIG',
          `Docker TLS (${why}): cannot read ${path}: ${reason}; set DOCKER_CERT_PATH to the directory with ca.pem, cert.pem and key.pem`,
          { cause: err },
        );
      }
    }
  }
  return { address: `${tls ? 'https' : 'tcp'}://${parsed.hostname}:${port}`, options };
}

export function createDocker(endpoint: DockerEndpoint): Dockerode {
  return new Dockerode(endpoint.options);
}
