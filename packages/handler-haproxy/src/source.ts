import type { ContainerInspectInfo, GlueEvent } from '@glue/core';
import type { Candidate, SkipNote } from './model.js';

/**
 * Where a balancer's routes come from. A source only resolves containers into candidates (their routes
 * with the address and port to send to); the model, its rules and the apply path are one for all sources.
 */
export interface RouteSource {
  /** A short name for logs (`docker`, `etcd`). */
  readonly kind: string;
  /** Opens the source (the etcd source lists and watches here); `changed` is called whenever routing may have changed. */
  start(changed: () => void): Promise<void>;
  /** Every container the source knows now, as candidates, and a note for each one with route labels or entries. */
  read(): { candidates: Candidate[]; notes: SkipNote[] };
  /** Whether the container (a candidate's `containerId`) still runs: a server of one that does not is retired at once. */
  alive(containerId: string): boolean;
  /** An engine event the source learns from before the apply it triggers (the docker source: stop signals). */
  observe?(event: GlueEvent, container: ContainerInspectInfo | undefined): void;
  stop(): Promise<void>;
}
