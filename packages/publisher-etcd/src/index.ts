/**
 * What users of this package need: the Publisher (the handler), the Reader (for consumers in Node),
 * the record and key layout other consumers read. Everything else is internal; tests import it by path.
 */
export { EtcdPublishError, EtcdPublisher, Publisher } from './publisher.js';
export { Reader } from './reader.js';
export type {
  ContainerChange,
  ContainerWatch,
  IndexedRoute,
  ReaderOptions,
  RouteWatch,
  RouteWatchOptions,
  WatchOptions,
} from './reader.js';
export { checkHttpEntry } from './route-entry.js';
export type { EntryCheck } from './route-entry.js';
export { CONNECTION_PARAMS, parseConnectionParams } from './params.js';
export type { ConnectionSettings } from './params.js';
export { containerKey, DEFAULT_PREFIX, httpKey, ownerKey, parseKey } from './keys.js';
export type { ParsedKey } from './keys.js';
export { containerRecordSchema, httpEntrySchema, ownerRecordSchema, RECORD_VERSION } from './schema.js';
export type {
  ContainerRecord,
  ContainerState,
  HttpEntry,
  HttpRoute,
  NetworkInfo,
  OwnerRecord,
  PortInfo,
} from './schema.js';
