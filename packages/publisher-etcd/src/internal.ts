/** Internals the benchmarks use from the build (not part of the package's exports map). */
export { Publisher } from './publisher.js';
export { Reader } from './reader.js';
export { containerEntries } from './record.js';
export { createEtcdClient } from './client.js';
