/**
 * What users of this package need: the Publisher (the handler), the Reader (for consumers in Node),
 * the record and key layout other consumers read. Everything else is internal; tests import it by path.
 */
export { EtcdPublishError, EtcdPublisher, Publisher } from './publisher.js';
export { Reader } from './reader.js';
export type { ContainerChange, ContainerWatch, ReaderOptions, WatchOptions } from './reader.js';
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
