import { isIP } from 'node:net';
import {
  type AddressMode,
  checkParams,
  param,
  parseNetworkName,
  type ParamProblem,
  parseBoolean,
  quote,
  regularFileProblem,
  unknownKeyReason,
} from '@glue/core';
import { DEFAULT_PREFIX, normalizePrefix } from './keys.js';
import { type FieldSelection, parseFields } from './record.js';

export const DEFAULT_ENDPOINTS = '127.0.0.1:2379';
export const DEFAULT_TTL_S = 30;
export const DEFAULT_WRITE_TIMEOUT_S = 5;
export const DEFAULT_BACKOFF_MAX_S = 5;
export const DEFAULT_RESYNC_S = 300;

export interface PublisherSettings extends ConnectionSettings {
  ttlSeconds: number;
  /** Fixed host id, or undefined to use the engine's name. */
  hostId: string | undefined;
  fields: FieldSelection;
  deleteOnStop: boolean;
  /** How long handle() waits for its change to reach etcd (etcd up); 0: never waits. */
  writeTimeoutMs: number;
  backoffMaxMs: number;
  /** Full reconcile this often even without events (repairs keys changed behind our back); 0: never. */
  resyncMs: number;
  /**
   * Where the HTTP index says a route is reached: `container` (the container's address on `network`, a
   * `glue_network` label or its default network) or `published` (the host port Docker published, at
   * `advertise` unless Docker bound a specific host address).
   */
  endpoint: { mode: AddressMode; advertise: string | undefined; network: string | undefined };
}

/** Every `[params]` key the publisher reads; any other key is refused (a typo must not fall back to a default). */
export const KNOWN_PARAMS = [
  'endpoints',
  'prefix',
  'ttl',
  'host-id',
  'user',
  'password',
  'ca-file',
  'cert-file',
  'key-file',
  'fields',
  'publish-env',
  'delete-on-stop',
  'write-timeout',
  'backoff-max',
  'resync-interval',
  'address',
  'advertise-address',
  'network',
] as const;

/** What a `host-id` may be (readers check the host of every key they read against it too). */
export const HOST_ID = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,252}$/;

function seconds(raw: string, min: number, max: number): number | undefined {
  const v = raw.trim();
  const n = Number(v);
  if (!/^\d+(\.\d+)?$/.test(v) || n < min || n > max) return undefined;
  return n;
}

/** How to reach etcd and where the keys are: shared by the publisher and every reader (the balancer). */
export interface ConnectionSettings {
  /** etcd client URLs, with scheme. */
  endpoints: string[];
  prefix: string;
  auth: { username: string; password: string } | undefined;
  tls: { caFile: string; certFile: string | undefined; keyFile: string | undefined } | undefined;
}

/** The keys parseConnectionParams reads (before `keyName` renames them). */
export const CONNECTION_PARAMS = [
  'endpoints',
  'prefix',
  'user',
  'password',
  'ca-file',
  'cert-file',
  'key-file',
] as const;
type ConnectionKey = (typeof CONNECTION_PARAMS)[number];

/**
 * `endpoints`, `prefix`, `user`, `password`, `ca-file`, `cert-file`, `key-file`, validated. `keyName`
 * gives the name each key has in `params` (the HAProxy handler reads them as `etcd-<key>`); problems
 * name the key by that name. Unknown keys are the caller's business.
 */
export function parseConnectionParams(
  params: Readonly<Record<string, string>>,
  keyName: (key: ConnectionKey) => string = (k) => k,
): { settings?: ConnectionSettings; problems: ParamProblem[] } {
  const problems: ParamProblem[] = [];
  const get = (k: ConnectionKey): string | undefined => {
    const v = params[keyName(k)];
    return v === undefined ? undefined : v.trim();
  };
  const problem = (k: ConnectionKey, reason: string): void => void problems.push({ key: keyName(k), reason });
  const caFile = get('ca-file') || undefined;
  const certFile = get('cert-file') || undefined;
  const keyFile = get('key-file') || undefined;
  if ((certFile === undefined) !== (keyFile === undefined)) {
    problem(certFile === undefined ? 'cert-file' : 'key-file', 'cert-file and key-file go together');
  }
  if (certFile !== undefined && caFile === undefined)
    problem('ca-file', "required with cert-file (the CA that signed etcd's certificate)");
  // Checked now, not when the client connects: a FIFO or a directory is a config problem (exit 2).
  for (const [key, path] of [
    ['ca-file', caFile],
    ['cert-file', certFile],
    ['key-file', keyFile],
  ] as const) {
    const notFile = path === undefined ? undefined : regularFileProblem(path);
    if (notFile !== undefined) problem(key, `${quote(path ?? '')} ${notFile}`);
  }

  const endpoints: string[] = [];
  const rawEndpoints = get('endpoints') || DEFAULT_ENDPOINTS;
  for (const item of rawEndpoints
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const withScheme = /^[a-z]+:\/\//i.test(item) ? item : `${caFile ? 'https' : 'http'}://${item}`;
    let url: URL;
    try {
      url = new URL(withScheme);
    } catch {
      problem('endpoints', `${JSON.stringify(item)} is not host:port or a URL`);
      continue;
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      problem('endpoints', `${JSON.stringify(item)}: only http:// and https:// endpoints`);
      continue;
    }
    if (url.port === '' || (url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.username !== '') {
      problem('endpoints', `${JSON.stringify(item)}: give host:port only (e.g. 127.0.0.1:2379)`);
      continue;
    }
    endpoints.push(`${url.protocol}//${url.host}`);
  }
  if (endpoints.length === 0 && !problems.some((p) => p.key === keyName('endpoints')))
    problem('endpoints', 'no endpoint given');

  let prefix = DEFAULT_PREFIX;
  try {
    prefix = normalizePrefix(get('prefix') ?? DEFAULT_PREFIX);
  } catch (err) {
    problem('prefix', (err as Error).message);
  }

  const user = get('user') || undefined;
  const password = params[keyName('password')];
  if (user !== undefined && (password === undefined || password === '')) problem('password', 'required with user');
  if (user === undefined && password !== undefined && password !== '') problem('user', 'required with password');
  if (problems.length > 0) return { problems };
  return {
    problems,
    settings: {
      endpoints,
      prefix,
      auth: user !== undefined ? { username: user, password: password! } : undefined,
      tls: caFile !== undefined ? { caFile, certFile, keyFile } : undefined,
    },
  };
}

/** Validates `[params]`; returns the settings or every problem found. */
export function parseParams(params: Record<string, string>): {
  settings?: PublisherSettings;
  problems: ParamProblem[];
} {
  const problems: ParamProblem[] = [];
  const known = new Set<string>(KNOWN_PARAMS);
  for (const key of Object.keys(params)) {
    if (known.has(key)) continue;
    problems.push({ key, reason: unknownKeyReason(key, KNOWN_PARAMS) });
  }
  const get = (k: string): string | undefined => {
    const v = params[k];
    return v === undefined ? undefined : v.trim();
  };

  const connection = parseConnectionParams(params);
  problems.push(...connection.problems);

  const ttl = seconds(get('ttl') ?? String(DEFAULT_TTL_S), 2, 86_400);
  if (ttl === undefined || !Number.isInteger(ttl))
    problems.push({
      key: 'ttl',
      reason: `${JSON.stringify(get('ttl'))} is not a whole number of seconds from 2 to 86400`,
    });

  const hostId = get('host-id') || undefined;
  if (hostId !== undefined && !HOST_ID.test(hostId)) {
    problems.push({
      key: 'host-id',
      reason: `${JSON.stringify(hostId)}: letters, digits and . _ : @ - only, starting with a letter or digit`,
    });
  }

  let fields = parseFields('summary');
  try {
    fields = parseFields(get('fields') ?? 'summary');
  } catch (err) {
    problems.push({ key: 'fields', reason: (err as Error).message });
  }

  const publishEnv = parseBoolean(get('publish-env') ?? 'false');
  if (publishEnv === undefined)
    problems.push({ key: 'publish-env', reason: `${JSON.stringify(get('publish-env'))} is not true or false` });
  else if (publishEnv && fields.mode !== 'full')
    problems.push({
      key: 'publish-env',
      reason: 'only applies with fields=full (the summary never holds the environment)',
    });
  else if (publishEnv) fields = { ...fields, publishEnv: true };

  // The keys that stand alone, by core's rules.
  const simple = checkParams(
    params,
    {
      'delete-on-stop': param.boolean(true),
      'write-timeout': param.number({
        default: DEFAULT_WRITE_TIMEOUT_S,
        min: 0,
        max: 600,
        unit: 'seconds',
        scale: 1000,
      }),
      'backoff-max': param.number({
        default: DEFAULT_BACKOFF_MAX_S,
        min: 0.1,
        max: 3600,
        unit: 'seconds',
        scale: 1000,
      }),
    },
    { allowUnknown: true },
  );
  problems.push(...simple.problems);

  const where = checkParams(
    params,
    {
      address: param.check((v) =>
        v === 'container' || v === 'published' ? undefined : 'is not container or published',
      ),
      'advertise-address': param.check((v) =>
        isIP(v) !== 0 ? undefined : 'is not an IP address (the address other hosts reach this host at)',
      ),
      network: param.check((v) => {
        const r = parseNetworkName(v);
        return r.ok ? undefined : r.reason;
      }),
    },
    { allowUnknown: true },
  );
  problems.push(...where.problems);
  const advertise = where.values['advertise-address'];
  // Cluster use names the address other hosts reach this one at: then published ports are the default.
  const mode = (where.values.address ?? (advertise !== undefined ? 'published' : 'container')) as AddressMode;
  if (mode === 'published' && advertise === undefined && !where.problems.some((p) => p.key === 'advertise-address'))
    problems.push({
      key: 'address',
      reason: 'published needs advertise-address (the address other hosts reach this host at)',
    });

  const resync = seconds(get('resync-interval') ?? String(DEFAULT_RESYNC_S), 0, 86_400);
  if (resync === undefined || (resync > 0 && resync < 5))
    problems.push({
      key: 'resync-interval',
      reason: `${JSON.stringify(get('resync-interval'))} is not 0 (off) or a number of seconds from 5 to 86400`,
    });

  if (problems.length > 0 || !connection.settings) return { problems };
  return {
    problems,
    settings: {
      ...connection.settings,
      ttlSeconds: ttl!,
      hostId,
      fields,
      deleteOnStop: simple.values['delete-on-stop'] ?? true,
      writeTimeoutMs: simple.values['write-timeout'] ?? DEFAULT_WRITE_TIMEOUT_S * 1000,
      backoffMaxMs: simple.values['backoff-max'] ?? DEFAULT_BACKOFF_MAX_S * 1000,
      resyncMs: Math.round(resync! * 1000),
      endpoint: { mode, advertise, network: where.values.network },
    },
  };
}
