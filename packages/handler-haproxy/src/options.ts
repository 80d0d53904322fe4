/**
 * `[params]` of lb.ini (and glue-balancer's flags, which map onto the same keys) -> typed options.
 * Staged: read every key, validate each against its grammar, throw a ParamError naming the key.
 */
import { statSync } from 'node:fs';
import { isIPv4, isIPv6 } from 'node:net';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import {
  ParamError,
  type ParamProblem,
  parseBoolean,
  parseHostname,
  parseNetworkName,
  quote,
  regularFileProblem,
  unknownKeyReason,
} from '@glue/core';
import { CONNECTION_PARAMS, type ConnectionSettings, parseConnectionParams } from '@glue/publisher-etcd/routes';
import type { Mode } from './reloader.js';

/** Where routes come from: this engine's containers, or the cluster index that etcd publishers write. */
export type Source = 'docker' | 'etcd';

export interface HaproxyOptions {
  source: Source;
  /** source=etcd: how to reach etcd and the publishers' prefix. */
  etcd: ConnectionSettings | undefined;
  mode: Mode;
  configFile: string;
  haproxyBin: string;
  reloadCommand: string[];
  template: string | undefined;
  /** `addr:port` of the HTTP frontend, '' for none. */
  httpBind: string;
  httpPort: number | undefined;
  tcpAddress: string;
  tcpPorts: { min: number; max: number };
  /** glue_tcp_* labels are this handler's (false with tcp-ports=none: another handler, nftables, balances them). */
  tcp: boolean;
  network: string | undefined;
  runtimeSocket: string;
  masterSocket: string;
  fastPath: boolean;
  /** Host map file for host-only routes; '' = one ACL rule per host (every new host reloads). */
  hostMap: string;
  /** Free host slots each reload declares (new hosts join without a reload while one is free). */
  spareBackends: number;
  debounceMs: number;
  maxDelayMs: number;
  minReloadIntervalMs: number;
  checkTimeoutMs: number;
  reloadTimeoutMs: number;
  /** An existing config file or host map Glue did not write is moved aside (`<file>.pre-glue`) instead of refused. */
  takeover: boolean;
  /** The HTTPS frontend and its certificates (undefined: no HTTPS). */
  https: HttpsOptions | undefined;
}

export interface HttpsOptions {
  /** `addr:port` of the HTTPS frontend. */
  bind: string;
  port: number;
  /** Where Glue keeps what HAProxy loads: `crt-list`, `default.pem`, `certs/`, the TLS and ACME maps. */
  tlsDir: string;
  /** The operator's default certificate (PEM, key inside or `<name>.key` beside); undefined: self-signed. */
  defaultCert: string | undefined;
  /** The operator's certificates (`*.pem`/`*.crt`, key inside or beside), watched. */
  certsDir: string | undefined;
  hstsMaxAge: number;
  acme: AcmeOptions | undefined;
}

export interface AcmeOptions {
  directory: string;
  email: string | undefined;
  /** Exact names, and suffixes written `.example.com` (any name under it). Nothing else is ever requested. */
  domains: string[];
  /** Account key and certificates (mode 0600, written atomically). */
  storage: string;
  /** CA to trust for the directory's own HTTPS (a private CA); undefined: the system's. */
  caFile: string | undefined;
  eab: { kid: string; hmacKey: string } | undefined;
  /** First retry after a failed order (doubling up to 1 h). */
  retryMinMs: number;
}

export const DEFAULTS = {
  mode: 'external' as Mode,
  configFile: '/etc/haproxy/haproxy.cfg',
  reloadCommand: 'systemctl reload haproxy',
  httpBind: '*:80',
  tcpAddress: '*',
  tcpPorts: '1024-65535',
  debounceMs: 20,
  maxDelayMs: 300,
  minReloadIntervalMs: 1000,
  spareBackends: 32,
  checkTimeoutS: 30,
  reloadTimeoutS: 15,
};

export interface ParamSpec {
  /** What the value looks like, for `--flag <arg>`. */
  arg: string;
  help: string;
  /** The default as the help shows it (the parser applies the real one). */
  default?: string;
  choices?: readonly string[];
}

/**
 * Every `[params]` key. glue-balancer derives its `--<key>` flags from this table, so the INI file and
 * the command line cannot drift apart.
 */
export const PARAM_SPEC = {
  source: {
    arg: 'source',
    help: "where routes come from: docker (this engine's containers) or etcd (the index Glue's etcd publishers write on every host)",
    default: 'docker',
    choices: ['docker', 'etcd'],
  },
  'etcd-endpoints': {
    arg: 'list',
    help: 'source etcd: etcd endpoints, host:port or URLs, comma list',
    default: '127.0.0.1:2379',
  },
  'etcd-prefix': { arg: 'prefix', help: "source etcd: the publishers' prefix", default: '/glue' },
  'etcd-user': { arg: 'name', help: 'source etcd: etcd user (with etcd-password)' },
  'etcd-password': { arg: 'password', help: 'source etcd: etcd password' },
  'etcd-ca-file': { arg: 'file', help: "source etcd: CA of etcd's certificate (https)" },
  'etcd-cert-file': { arg: 'file', help: 'source etcd: client certificate (with etcd-key-file)' },
  'etcd-key-file': { arg: 'file', help: 'source etcd: client key' },
  mode: {
    arg: 'mode',
    help: 'managed: Glue runs HAProxy; external: reload with --reload-command; file: only write the file',
    default: DEFAULTS.mode,
    choices: ['managed', 'external', 'file'],
  },
  'config-file': { arg: 'file', help: 'the HAProxy config file Glue writes', default: DEFAULTS.configFile },
  takeover: {
    arg: 'yes|no',
    help: 'hand over an existing config-file / host-map that Glue did not write (the original is kept as <file>.pre-glue); without it such a file is refused',
    default: 'no',
  },
  haproxy: { arg: 'bin', help: 'haproxy binary', default: 'haproxy' },
  'reload-command': {
    arg: 'argv',
    help: 'external mode: command that reloads HAProxy (split on spaces, no shell)',
    default: DEFAULTS.reloadCommand,
  },
  template: { arg: 'file', help: 'nunjucks template for haproxy.cfg (default: built-in)' },
  'http-bind': { arg: 'addr:port', help: 'HTTP frontend address, or none', default: DEFAULTS.httpBind },
  'tcp-address': { arg: 'addr', help: 'address TCP frontends bind', default: DEFAULTS.tcpAddress },
  'tcp-ports': {
    arg: 'min-max',
    help: "frontend ports glue_tcp_<port>_port labels may claim, or none (TCP labels are another handler's, e.g. nftables)",
    default: DEFAULTS.tcpPorts,
  },
  network: { arg: 'name', help: 'Docker network whose address to use (label glue_network overrides)' },
  'runtime-socket': {
    arg: 'path',
    help: 'HAProxy runtime API socket, or none (managed: default <run-dir>/haproxy-runtime.sock; external: none)',
  },
  'master-socket': { arg: 'path', help: 'managed mode: master CLI socket (default <run-dir>/haproxy-master.sock)' },
  'run-dir': { arg: 'dir', help: "where the sockets go (default: the config file's directory)" },
  'runtime-api': {
    arg: 'on|off',
    help: 'use the runtime API when only servers change (off: always reload)',
    default: 'on',
  },
  'host-map': {
    arg: 'file',
    help: 'host map file for host-only routes, or none for one ACL rule per host (default: <config name>.hosts.map beside the config)',
  },
  'spare-backends': {
    arg: 'n',
    help: 'free host slots each reload declares: new hosts join through the runtime API while one is free (0-10000)',
    default: String(DEFAULTS.spareBackends),
  },
  'debounce-ms': {
    arg: 'ms',
    help: 'quiet time that ends a burst of events (0-60000)',
    default: String(DEFAULTS.debounceMs),
  },
  'max-delay-ms': {
    arg: 'ms',
    help: 'longest an event waits for its apply (0-600000)',
    default: String(DEFAULTS.maxDelayMs),
  },
  'min-reload-interval-ms': {
    arg: 'ms',
    help: 'least time between two reloads; structural changes inside it coalesce (0-600000)',
    default: String(DEFAULTS.minReloadIntervalMs),
  },
  'https-bind': {
    arg: 'addr:port',
    help: 'HTTPS frontend address (routes with glue_http_<port>_tls), or none',
    default: 'none',
  },
  'certs-dir': {
    arg: 'dir',
    help: 'PEM certificates to serve (chain and key in one file, or <name>.key beside); names from the SAN; watched',
  },
  'default-cert': {
    arg: 'file',
    help: 'certificate for a client whose SNI names no certificate (default: a generated self-signed one)',
  },
  'tls-dir': {
    arg: 'dir',
    help: 'where Glue keeps the certificates HAProxy loads, the crt-list and the TLS maps (default: <config name>.tls beside the config)',
  },
  'hsts-max-age': {
    arg: 'seconds',
    help: 'max-age of Strict-Transport-Security for glue_http_<port>_hsts hosts (0-63072000)',
    default: '31536000',
  },
  'acme-directory': {
    arg: 'url',
    help: "ACME directory URL (e.g. Let's Encrypt's); with it, allowed HTTPS hosts get certificates by HTTP-01",
  },
  'acme-email': { arg: 'address', help: 'contact address of the ACME account' },
  'acme-domains': {
    arg: 'list',
    help: 'the only names ACME may be asked for: exact names and .suffix entries, comma list (required with acme-directory)',
  },
  'acme-storage': {
    arg: 'dir',
    help: 'ACME account key and certificates, mode 0600 (default: <tls-dir>/acme)',
  },
  'acme-ca-file': { arg: 'file', help: "CA that signs the ACME directory's own HTTPS certificate (a private CA)" },
  'acme-eab-kid': { arg: 'id', help: 'external account binding key id (with acme-eab-hmac-key)' },
  'acme-eab-hmac-key': { arg: 'key', help: 'external account binding HMAC key, base64url' },
  'acme-retry': {
    arg: 'seconds',
    help: 'first retry after a failed order, doubling up to an hour (1-3600)',
    default: '10',
  },
  'check-timeout': {
    arg: 'seconds',
    help: 'longest haproxy -c may take (1-600)',
    default: String(DEFAULTS.checkTimeoutS),
  },
  'reload-timeout': {
    arg: 'seconds',
    help: 'longest a reload may take (1-600)',
    default: String(DEFAULTS.reloadTimeoutS),
  },
} as const satisfies Record<string, ParamSpec>;

export type ParamKey = keyof typeof PARAM_SPEC;

export const PARAM_KEYS = Object.keys(PARAM_SPEC) as ParamKey[];

/** `<config dir>/<config name without .cfg>.hosts.map`. */
export function defaultHostMap(configFile: string): string {
  return join(dirname(configFile), `${basename(configFile).replace(/\.cfg$/, '')}.hosts.map`);
}

const BIND = /^(\*|(?:[0-9]{1,3}\.){3}[0-9]{1,3}|\[[0-9a-fA-F:]+\])?:([1-9][0-9]{0,4})$/;
const ADDRESS = /^(\*|(?:[0-9]{1,3}\.){3}[0-9]{1,3}|::|\[[0-9a-fA-F:]+\])$/;
const SAFE_PATH = /^[A-Za-z0-9_./@+-]+$/;

/** Thrown by `fail` inside one field: that field takes its fallback, the others are still read. */
class Invalid extends Error {}

/**
 * Reads and validates `[params]`. Relative paths are taken from `baseDir` (the INI file's directory).
 * Every bad key is reported, not just the first: one ParamError with a problem per key.
 */
export function parseHaproxyParams(
  handler: string,
  params: Readonly<Record<string, string>>,
  baseDir: string,
): HaproxyOptions {
  const problems: ParamProblem[] = [];
  const get = (key: string): string | undefined => {
    const v = params[key];
    return v === undefined ? undefined : v.trim();
  };
  const fail = (key: string, reason: string): never => {
    problems.push({ key, reason });
    throw new Invalid(reason);
  };
  /** One field's value, or `fallback` (and its problem recorded) when it is bad. */
  const field = <T>(compute: () => T, fallback: T): T => {
    try {
      return compute();
    } catch (err) {
      if (err instanceof Invalid) return fallback;
      throw err;
    }
  };
  const path = (key: string, value: string): string => {
    if (!SAFE_PATH.test(value)) fail(key, `${quote(value)} is not a plain path (letters, digits, _ . / @ + - only)`);
    return isAbsolute(value) ? value : resolve(baseDir, value);
  };
  // A unix socket path must fit sockaddr_un (108 bytes with its NUL): a longer one fails at bind.
  const socketPath = (key: string, value: string): string => {
    const p = path(key, value);
    if (Buffer.byteLength(p) > 107)
      fail(
        key,
        `${p} is ${Buffer.byteLength(p)} bytes; a unix socket path may have at most 107 (use a shorter run-dir)`,
      );
    return p;
  };
  // Where Glue writes a file: an existing directory there would only fail at the first rename.
  const writablePath = (key: string, value: string): string => {
    const p = path(key, value);
    let isDir = false;
    try {
      isDir = statSync(p).isDirectory();
    } catch {
      // does not exist yet: Glue creates it
    }
    if (isDir) fail(key, `${p} is a directory; name the file Glue writes`);
    return p;
  };
  const intParam = (key: string, fallback: number, min: number, max: number, scale = 1): number =>
    field(() => {
      const raw = get(key);
      if (raw === undefined || raw === '') return fallback;
      if (!/^[0-9]+(\.[0-9]+)?$/.test(raw))
        fail(key, `${quote(raw)} is not a number from ${min / scale} to ${max / scale}`);
      const n = Math.round(Number(raw) * scale);
      if (n < min || n > max) fail(key, `${raw} is outside ${min / scale}-${max / scale}`);
      return n;
    }, fallback);

  for (const key of Object.keys(params)) {
    if (!Object.hasOwn(PARAM_SPEC, key)) problems.push({ key, reason: unknownKeyReason(key, PARAM_KEYS) });
  }

  const mode = field(() => {
    const m = (get('mode') || DEFAULTS.mode) as Mode;
    if (!['managed', 'external', 'file'].includes(m)) fail('mode', `${quote(m)} is not managed, external or file`);
    return m;
  }, DEFAULTS.mode);
  const configFile = field(
    () => writablePath('config-file', get('config-file') || DEFAULTS.configFile),
    DEFAULTS.configFile,
  );
  const runDir = field(() => path('run-dir', get('run-dir') || dirname(configFile)), dirname(configFile));
  const haproxyBin = field(() => {
    const bin = get('haproxy') || 'haproxy';
    if (!SAFE_PATH.test(bin)) fail('haproxy', `${quote(bin)} is not a plain path`);
    return bin;
  }, 'haproxy');

  const reloadCommand = field(() => {
    const argv = (get('reload-command') ?? DEFAULTS.reloadCommand).split(/\s+/).filter(Boolean);
    if (mode === 'external' && argv.length === 0)
      fail('reload-command', 'external mode needs a reload command, e.g. systemctl reload haproxy');
    return argv;
  }, [] as string[]);

  const template = field((): string | undefined => {
    const t = get('template');
    if (!t) return undefined;
    const file = path('template', t);
    const notFile = regularFileProblem(file);
    if (notFile) fail('template', `${file} ${notFile}`);
    return file;
  }, undefined);

  const bind = (key: string, fallback: string, example: string): { bind: string; port: number | undefined } =>
    field(
      () => {
        const raw = get(key) ?? fallback;
        if (raw === '' || raw === 'none') return { bind: '', port: undefined };
        const m = BIND.exec(raw);
        const port = Number(m?.[2] ?? 0);
        const host = m?.[1] ?? '';
        const badHost =
          host !== '' && host !== '*' && (host.startsWith('[') ? !isIPv6(host.slice(1, -1)) : !isIPv4(host));
        if (!m || port > 65535 || badHost) fail(key, `${quote(raw)} is not ADDRESS:PORT (e.g. ${example}), or none`);
        return { bind: raw, port };
      },
      { bind: '', port: undefined },
    );
  const { bind: httpBind, port: httpPort } = bind('http-bind', DEFAULTS.httpBind, '*:80, 127.0.0.1:8080');

  const tcpAddress = field(() => {
    const a = get('tcp-address') || DEFAULTS.tcpAddress;
    const v6 = /^\[(.*)\]$/.exec(a)?.[1];
    if (
      !ADDRESS.test(a) ||
      (v6 === undefined && a !== '*' && a !== '::' && !isIPv4(a)) ||
      (v6 !== undefined && !isIPv6(v6))
    ) {
      fail(
        'tcp-address',
        `${quote(a)} is not an address (*, an IPv4 address, :: or a bracketed IPv6 address like [::1])`,
      );
    }
    return a;
  }, DEFAULTS.tcpAddress);
  const tcpPorts = field(
    () => {
      const raw = get('tcp-ports') || DEFAULTS.tcpPorts;
      if (raw === 'none') return { min: 1024, max: 65535 };
      const range = /^([0-9]{1,5})-([0-9]{1,5})$/.exec(raw);
      const min = Number(range?.[1]);
      const max = Number(range?.[2]);
      if (!range || min < 1 || max > 65535 || min > max)
        fail('tcp-ports', `${quote(raw)} is not a port range like 1024-65535`);
      return { min, max };
    },
    { min: 1024, max: 65535 },
  );

  const network = field((): string | undefined => {
    const n = get('network');
    if (!n) return undefined;
    const r = parseNetworkName(n);
    if (!r.ok) fail('network', `${quote(n)} ${r.reason}`);
    return n;
  }, undefined);

  const runtimeSocket = field(() => {
    const raw = get('runtime-socket');
    let sock = '';
    if (raw === undefined || raw === '')
      sock = mode === 'managed' ? socketPath('runtime-socket', join(runDir, 'haproxy-runtime.sock')) : '';
    else if (raw !== 'none') sock = socketPath('runtime-socket', raw);
    if (mode === 'managed' && sock === '')
      fail('runtime-socket', 'managed mode needs the runtime socket (to see the new worker after a reload)');
    return sock;
  }, '');
  const masterSocket = field(
    () => socketPath('master-socket', get('master-socket') || join(runDir, 'haproxy-master.sock')),
    '',
  );

  const fastPath = field(() => {
    const raw = get('runtime-api') || 'on';
    const on = parseBoolean(raw);
    if (on === undefined) fail('runtime-api', `${quote(raw.toLowerCase())} is not on or off`);
    return on === true;
  }, true);

  const hostMap = field(() => {
    const raw = get('host-map');
    const file = raw === 'none' ? '' : raw ? writablePath('host-map', raw) : defaultHostMap(configFile);
    if (file === configFile) fail('host-map', 'must not be the config file');
    return file;
  }, '');

  const source = field((): Source => {
    const raw = get('source') || 'docker';
    if (raw !== 'docker' && raw !== 'etcd') fail('source', `${quote(raw)} is not docker or etcd`);
    return raw as Source;
  }, 'docker');
  let etcd: ConnectionSettings | undefined;
  const etcdKey = (k: string): string => `etcd-${k}`;
  if (source === 'etcd') {
    const connection = parseConnectionParams(params, etcdKey);
    problems.push(...connection.problems);
    etcd = connection.settings;
  } else {
    for (const key of CONNECTION_PARAMS.map(etcdKey))
      if (params[key] !== undefined) problems.push({ key, reason: 'only applies with source=etcd' });
  }

  const takeover = field(() => {
    const raw = get('takeover') || 'no';
    const on = parseBoolean(raw);
    if (on === undefined) fail('takeover', `${quote(raw)} is not yes or no`);
    return on === true;
  }, false);

  const https = parseHttps({ get, fail, field, path, problems, configFile, httpBind, httpPort, bind });

  const options: HaproxyOptions = {
    https,
    takeover,
    source,
    etcd,
    mode,
    configFile,
    haproxyBin,
    reloadCommand,
    template,
    httpBind,
    httpPort,
    tcpAddress,
    tcpPorts,
    tcp: get('tcp-ports') !== 'none',
    network,
    runtimeSocket,
    masterSocket,
    fastPath,
    hostMap,
    spareBackends: intParam('spare-backends', DEFAULTS.spareBackends, 0, 10_000),
    debounceMs: intParam('debounce-ms', DEFAULTS.debounceMs, 0, 60_000),
    maxDelayMs: intParam('max-delay-ms', DEFAULTS.maxDelayMs, 0, 600_000),
    minReloadIntervalMs: intParam('min-reload-interval-ms', DEFAULTS.minReloadIntervalMs, 0, 600_000),
    checkTimeoutMs: intParam('check-timeout', DEFAULTS.checkTimeoutS * 1000, 1000, 600_000, 1000),
    reloadTimeoutMs: intParam('reload-timeout', DEFAULTS.reloadTimeoutS * 1000, 1000, 600_000, 1000),
  };
  if (problems.length > 0) throw ParamError.of(handler, problems);
  return options;
}

interface Readers {
  get: (key: string) => string | undefined;
  fail: (key: string, reason: string) => never;
  field: <T>(compute: () => T, fallback: T) => T;
  path: (key: string, value: string) => string;
  problems: ParamProblem[];
  configFile: string;
  httpBind: string;
  httpPort: number | undefined;
  bind: (key: string, fallback: string, example: string) => { bind: string; port: number | undefined };
}

const HTTPS_KEYS = ['certs-dir', 'default-cert', 'tls-dir', 'hsts-max-age'] as const;
const ACME_KEYS = [
  'acme-email',
  'acme-domains',
  'acme-storage',
  'acme-ca-file',
  'acme-eab-kid',
  'acme-eab-hmac-key',
  'acme-retry',
];

/** `https-bind` and what goes with it (certificates, ACME); each key's problem names the key. */
function parseHttps(r: Readers): HttpsOptions | undefined {
  const { get, fail, field, path, problems } = r;
  const { bind: httpsBind, port } = r.bind('https-bind', 'none', '*:443, 127.0.0.1:8443');
  if (httpsBind === '' || port === undefined) {
    for (const key of [...HTTPS_KEYS, 'acme-directory', ...ACME_KEYS])
      if (get(key) !== undefined) problems.push({ key, reason: 'only applies with https-bind' });
    return undefined;
  }
  if (port === r.httpPort) problems.push({ key: 'https-bind', reason: `port ${port} is already http-bind's` });
  const file = (key: string): string | undefined =>
    field(() => {
      const raw = get(key);
      if (!raw) return undefined;
      const f = path(key, raw);
      const notFile = regularFileProblem(f);
      if (notFile) fail(key, `${f} ${notFile}`);
      return f;
    }, undefined);
  const dir = (key: string, fallback: string | undefined, mustExist: boolean): string | undefined =>
    field(() => {
      const raw = get(key);
      const d = raw ? path(key, raw) : fallback;
      if (d === undefined || !mustExist) return d;
      let isDir = false;
      try {
        isDir = statSync(d).isDirectory();
      } catch {
        fail(key, `${d} does not exist`);
      }
      if (!isDir) fail(key, `${d} is not a directory`);
      return d;
    }, fallback);
  const tlsDir =
    dir('tls-dir', join(dirname(r.configFile), `${basename(r.configFile).replace(/\.cfg$/, '')}.tls`), false) ?? '';
  const hstsMaxAge = field(() => {
    const raw = get('hsts-max-age') || '31536000';
    if (!/^[0-9]{1,9}$/.test(raw) || Number(raw) > 63_072_000)
      fail('hsts-max-age', `${quote(raw)} is not a number of seconds from 0 to 63072000`);
    return Number(raw);
  }, 31_536_000);
  const https: HttpsOptions = {
    bind: httpsBind,
    port,
    tlsDir,
    defaultCert: file('default-cert'),
    certsDir: dir('certs-dir', undefined, true),
    hstsMaxAge,
    acme: undefined,
  };
  const directory = get('acme-directory');
  if (!directory) {
    for (const key of ACME_KEYS)
      if (get(key) !== undefined) problems.push({ key, reason: 'only applies with acme-directory' });
    return https;
  }
  https.acme = field((): AcmeOptions | undefined => {
    let url: URL | undefined;
    try {
      url = new URL(directory);
    } catch {
      // reported below
    }
    if (url?.protocol !== 'https:')
      fail('acme-directory', `${quote(directory)} is not an https:// URL of an ACME directory`);
    if (r.httpBind === '')
      fail('acme-directory', 'needs http-bind: HTTP-01 challenges are answered on the HTTP frontend');
    const domains = field(() => parseAcmeDomains(get('acme-domains'), fail), [] as string[]);
    const email = field(() => {
      const e = get('acme-email');
      if (e && !/^[^\s@<>"]+@[A-Za-z0-9.-]+$/.test(e)) fail('acme-email', `${quote(e)} is not an e-mail address`);
      return e || undefined;
    }, undefined);
    const kid = get('acme-eab-kid');
    const hmacKey = get('acme-eab-hmac-key');
    if ((kid === undefined) !== (hmacKey === undefined))
      fail(kid === undefined ? 'acme-eab-kid' : 'acme-eab-hmac-key', 'acme-eab-kid and acme-eab-hmac-key go together');
    if (hmacKey !== undefined && !/^[A-Za-z0-9_-]+=*$/.test(hmacKey)) fail('acme-eab-hmac-key', 'is not base64url');
    const retry = get('acme-retry') || '10';
    if (!/^[0-9]{1,4}$/.test(retry) || Number(retry) < 1 || Number(retry) > 3600)
      fail('acme-retry', `${quote(retry)} is not a number of seconds from 1 to 3600`);
    return {
      directory,
      email,
      domains,
      retryMinMs: Number(retry) * 1000,
      storage: dir('acme-storage', join(tlsDir, 'acme'), false) ?? join(tlsDir, 'acme'),
      caFile: file('acme-ca-file'),
      eab: kid !== undefined && hmacKey !== undefined ? { kid, hmacKey } : undefined,
    };
  }, undefined);
  return https;
}

/** `acme-domains`: exact names and `.suffix` entries (`*.suffix` is read as `.suffix`). At least one. */
export function parseAcmeDomains(raw: string | undefined, fail: (key: string, reason: string) => never): string[] {
  if (!raw)
    fail(
      'acme-domains',
      'is required with acme-directory: list the names (or .suffixes) certificates may be asked for',
    );
  const out: string[] = [];
  for (const part of raw.split(',').map((p) => p.trim())) {
    const suffix = part.startsWith('.') || part.startsWith('*.');
    const name = part.replace(/^\*?\./, '');
    const h = parseHostname(name);
    if (!h.ok) fail('acme-domains', `${quote(part)} ${h.reason}`);
    if (suffix && !h.value.includes('.'))
      fail('acme-domains', `${quote(part)} would allow every name under a top-level domain`);
    out.push(suffix ? `.${h.value}` : h.value);
  }
  return out;
}
