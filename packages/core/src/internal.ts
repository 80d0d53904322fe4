/** Internals the benchmarks use from the build (not part of the package's exports map). */
export { ContainerStore } from './container-store.js';
