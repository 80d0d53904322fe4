/** Internals the benchmarks use from the build (not part of the package's exports map). */
export { DEFAULTS } from './options.js';
export { buildModel } from './model.js';
export { Renderer, templateContext } from './template.js';
export { checkConfig } from './haproxy-io.js';
export { hostMapText, placeModel, planSlots, slotHosts } from './slots.js';
export { buildFromCandidates } from './model.js';
export { etcdCandidates } from './etcd-source.js';
export { ManagedHaproxy } from './managed.js';
export { Certificates } from './tls/certificates.js';
export { readBundle } from './tls/pem.js';
