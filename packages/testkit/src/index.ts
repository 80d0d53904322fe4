export { APT_PACKAGES, requireBinary } from './binaries.js';
export { ensureTestImage, httpdCommand, startDockerd, TEST_IMAGE } from './dockerd.js';
export type { DockerEngine, RunOptions, TestContainer } from './dockerd.js';
export { httpGet } from './http.js';
export type { HttpResult } from './http.js';
export { isAlive, pidsMentioning, stopPid } from './processes.js';
export { tempDir, waitFor } from './wait.js';
export type { WaitOptions } from './wait.js';
export * from './etcd.js';
