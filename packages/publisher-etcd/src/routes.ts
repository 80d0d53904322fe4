/**
 * `@glue/publisher-etcd/routes`: what a balancer needs to read the index without loading the etcd
 * client: the connection params (same keys and checks as the publisher's), the key layout, the entry
 * schema and the untrusted-input check. No etcd3, no gRPC: cheap to import where etcd is optional.
 */
export { CONNECTION_PARAMS, parseConnectionParams } from './params.js';
export type { ConnectionSettings } from './params.js';
export { checkHttpEntry } from './route-entry.js';
export type { EntryCheck } from './route-entry.js';
export { containerKey, DEFAULT_PREFIX, httpKey, parseKey } from './keys.js';
export type { ParsedKey } from './keys.js';
export type { HttpEntry } from './schema.js';
