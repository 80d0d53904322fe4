import { z } from 'zod';

/** Version of the JSON written under the keys; readers refuse what they do not know. */
export const RECORD_VERSION = 1;

export const networkSchema = z.object({
  ip: z.string(),
  prefixLen: z.number().int().nonnegative(),
  gateway: z.string(),
  ipv6: z.string(),
  mac: z.string(),
  aliases: z.array(z.string()),
});

export const portSchema = z.object({
  port: z.number().int().min(1).max(65535),
  protocol: z.string(),
  /** Where the engine publishes it on the host, if it does. */
  published: z.array(z.object({ ip: z.string(), port: z.number().int() })),
});

export const httpRouteSchema = z.object({
  /** The container port the virtual host goes to (`glue_http_<port>_host`). */
  port: z.number().int().min(1).max(65535),
  vhost: z.string(),
  /** `glue_http_<port>_prefix`, without leading `/` ('' for none). */
  prefix: z.string(),
  stripPrefix: z.boolean(),
  weight: z
    .number()
    .int()
    .min(0)
    .max(256) /** Present when the route is served over HTTPS (`glue_http_<port>_tls`, `_redirect_https`, `_hsts`). */,
  tls: z.object({ redirect: z.boolean(), hsts: z.boolean() }).optional(),
});

/** A refused label: its name, its value and why (the same words the HAProxy handler logs). */
export const labelProblemSchema = z.object({ label: z.string(), value: z.string(), reason: z.string() });

export const stateSchema = z.object({
  status: z.string(),
  running: z.boolean(),
  paused: z.boolean(),
  restarting: z.boolean(),
  pid: z.number().int(),
  startedAt: z.string(),
});

/** The value of `<prefix>/hosts/<host>/containers/<id>`. Summary fields are absent when `fields=` left them out. */
export const containerRecordSchema = z.object({
  v: z.literal(RECORD_VERSION),
  host: z.string(),
  id: z.string(),
  name: z.string().optional(),
  image: z.string().optional(),
  imageId: z.string().optional(),
  labels: z.record(z.string(), z.string()).optional(),
  state: stateSchema.optional(),
  /** `healthy`, `unhealthy`, `starting`, or null without a healthcheck. */
  health: z.string().nullable().optional(),
  networks: z.record(z.string(), networkSchema).optional(),
  ports: z.array(portSchema).optional(),
  http: z.array(httpRouteSchema).optional(),
  /** `glue_*` labels refused by the label grammar (with `http`, only when there are some): those routes are not indexed. */
  labelProblems: z.array(labelProblemSchema).optional(),
  /** The whole `docker inspect`, with `fields=full`. */
  inspect: z.record(z.string(), z.unknown()).optional(),
});

/** The value of `<prefix>/http/<vhost>/<host>/<id>/<port>`: enough to route without reading the container key. */
export const httpEntrySchema = z.object({
  v: z.literal(RECORD_VERSION),
  host: z.string(),
  id: z.string(),
  name: z.string(),
  vhost: z.string(),
  port: z.number().int().min(1).max(65535),
  prefix: z.string(),
  stripPrefix: z.boolean(),
  weight: z.number().int().min(0).max(256),
  /** Present when the route is served over HTTPS (`glue_http_<port>_tls`, `_redirect_https`, `_hsts`). */
  tls: z.object({ redirect: z.boolean(), hsts: z.boolean() }).optional(),
  /** The container's addresses, by network name. */
  addresses: z.record(z.string(), z.string()),
  /**
   * Where a balancer sends this route's requests, as the publisher resolved it (its `address` mode):
   * the container's address and port, or the host address and port Docker published.
   */
  endpoint: z.object({ address: z.string().min(1), port: z.number().int().min(1).max(65535) }),
  health: z.string().nullable(),
  /** Present (true) while the container is paused: it keeps its addresses but answers nothing. */
  paused: z.literal(true).optional(),
  /** The key of the container's full record. */
  container: z.string(),
});

/** The value of `<prefix>/hosts/<host>/owner`. */
export const ownerRecordSchema = z.object({
  v: z.literal(RECORD_VERSION),
  host: z.string(),
  engineId: z.string(),
  engineName: z.string(),
  hostname: z.string(),
  pid: z.number().int(),
  instance: z.string(),
  ttl: z.number().int().positive(),
});

export type NetworkInfo = z.infer<typeof networkSchema>;
export type PortInfo = z.infer<typeof portSchema>;
export type HttpRoute = z.infer<typeof httpRouteSchema>;
export type ContainerState = z.infer<typeof stateSchema>;
export type ContainerRecord = z.infer<typeof containerRecordSchema>;
export type HttpEntry = z.infer<typeof httpEntrySchema>;
export type OwnerRecord = z.infer<typeof ownerRecordSchema>;
