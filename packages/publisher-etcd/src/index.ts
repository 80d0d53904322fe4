export { EtcdPublishError, Publisher, EtcdPublisher } from './publisher.js';
export { Reader } from './reader.js';
export type { ContainerChange, ContainerWatch, ReaderOptions, WatchOptions } from './reader.js';
export { CREDENTIAL_LOG_EVERY_MS, credentialProblem, EtcdSync, HostConflictError, MAX_TXN_BYTES, MAX_TXN_OPS } from './sync.js';
export type { SyncOptions, SyncState, SyncStats } from './sync.js';
export { createEtcdClient } from './client.js';
export type { ClientSettings } from './client.js';
export {
  DEFAULT_BACKOFF_MAX_S,
  DEFAULT_ENDPOINTS,
  DEFAULT_RESYNC_S,
  DEFAULT_TTL_S,
  DEFAULT_WRITE_TIMEOUT_S,
  parseParams,
} from './params.js';
export type { PublisherSettings } from './params.js';
export {
  containerKey,
  containersPrefix,
  DEFAULT_PREFIX,
  hostPrefix,
  hostsPrefix,
  httpKey,
  httpPrefix,
  normalizePrefix,
  ownerKey,
  parseKey,
} from './keys.js';
export type { ParsedKey } from './keys.js';
export { containerEntries, containerRecord, DEFAULT_FIELDS, httpRoutes, isPublished, parseFields, SUMMARY_FIELDS } from './record.js';
export type { FieldSelection, LabelProblem, SummaryField } from './record.js';
export {
  containerRecordSchema,
  httpEntrySchema,
  labelProblemSchema,
  ownerRecordSchema,
  RECORD_VERSION,
} from './schema.js';
export type { ContainerRecord, ContainerState, HttpEntry, HttpRoute, NetworkInfo, OwnerRecord, PortInfo } from './schema.js';
