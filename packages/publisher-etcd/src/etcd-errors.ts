/**
 * What etcd and its client mean when they fail, in plain words, and which failures call for what:
 * credentials (retry slowly, say what to fix), a lost lease (grant a new one), a rival agent.
 */
import { errorMessage, GlueError } from '@glue/core';
import type { OwnerRecord } from './schema.js';

/** A credential error is logged at most this often while it does not change. */
export const CREDENTIAL_LOG_EVERY_MS = 60_000;

/**
 * etcd's own words when it refuses the credentials (wrong password, unknown user, missing
 * permission), or undefined for any other error. Retrying sooner does not fix these.
 */
export function credentialProblem(err: unknown): string | undefined {
  const text = `${(err as Error | undefined)?.name ?? ''} ${errorMessage(err)}`;
  const m =
    /etcdserver: (authentication failed[^\n]*|permission denied|user name not found|user name is empty|authentication is not enabled|invalid auth token|invalid auth management)/i.exec(
      text,
    );
  if (m) return m[1]!.replace(/[\s.]+$/, '');
  if (/EtcdPermissionDeniedError|PERMISSION_DENIED/.test(text)) return 'permission denied';
  if (/EtcdAuthenticationFailedError|UNAUTHENTICATED/.test(text)) return 'authentication failed';
  return undefined;
}

/** Thrown when another agent with another engine holds this host id on a live lease. */
export class HostConflictError extends GlueError {
  constructor(host: string, other: OwnerRecord) {
    super(
      'BACKEND_UNAVAILABLE',
      `host-id ${JSON.stringify(host)} is published by another agent (engine ${other.engineName || other.engineId}, ` +
        `${other.hostname} pid ${other.pid}); give each engine its own host-id`,
    );
    this.name = 'HostConflictError';
  }
}

export class LeaseLostError extends Error {
  constructor(lease: string) {
    super(`lease ${lease} is gone (expired or revoked)`);
    this.name = 'LeaseLostError';
  }
}

/** etcd3 / gRPC errors, said plainly. */
export function describeEtcdError(err: unknown): string {
  const text = errorMessage(err);
  if (/circuit breaker is open/i.test(text))
    return 'etcd unreachable (the client pauses calls for 5 s after 3 failures in a row)';
  const refused = /ECONNREFUSED ([\d.:[\]a-f]+)/i.exec(text);
  if (refused) return `connection refused by ${refused[1]!.replace(/\.$/, '')}`;
  if (/DEADLINE_EXCEEDED|deadline exceeded/i.test(text)) return 'etcd did not answer in time';
  return text.replace(/\s*Resolution note:\s*$/, '');
}

export function isLeaseNotFound(err: unknown): boolean {
  return /lease not found|EtcdLeaseInvalid/i.test(`${(err as Error)?.name ?? ''} ${describeEtcdError(err)}`);
}
