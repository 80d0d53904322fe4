/**
 * The one lease every key of this agent hangs on: granted when needed, kept alive every TTL/3,
 * dropped when etcd says it expired, revoked on a stop that deletes the keys.
 */
import type { Logger } from '@glue/core';
import type { Etcd3 } from 'etcd3';
import { credentialProblem, describeEtcdError } from './etcd-errors.js';

export interface LeaseKeeperOptions {
  client: Etcd3;
  ttlSeconds: number;
  callTimeoutMs: number;
  logger: Logger;
  /** The lease is gone, or a keepalive answered again after failing: the keys must be checked. */
  onNeedReconcile: () => void;
}

export class LeaseKeeper {
  /** The lease (decimal string), once granted. */
  id: string | undefined;
  /** Since start: leases granted, keepalives answered, leases found expired, keepalives that failed. */
  readonly counts = { grants: 0, renewals: 0, losses: 0, keepaliveFailures: 0 };
  private busy = false;
  /** The last keepalive failed: the next one that answers asks for a reconcile. */
  private suspect = false;

  constructor(private readonly o: LeaseKeeperOptions) {}

  private get deadline(): { deadline: number } {
    return { deadline: Date.now() + this.o.callTimeoutMs };
  }

  async alive(lease: string): Promise<boolean> {
    const res = await this.o.client.leaseClient.leaseTimeToLive({ ID: lease }, this.deadline);
    return Number(res.TTL) > 0;
  }

  /** Forgets the lease when etcd says it expired (the next `ensure` grants a new one). */
  async dropIfExpired(): Promise<void> {
    if (this.id !== undefined && !(await this.alive(this.id))) {
      this.o.logger.warn({ lease: this.id }, `etcd: lease ${this.id} expired; granting a new one`);
      this.counts.losses += 1;
      this.id = undefined;
    }
  }

  /** The lease, granted now if there is none. */
  async ensure(): Promise<string> {
    if (this.id !== undefined) return this.id;
    const res = await this.o.client.leaseClient.leaseGrant({ TTL: this.o.ttlSeconds }, this.deadline);
    this.o.logger.info(
      { lease: res.ID, ttl: this.o.ttlSeconds },
      `etcd: lease ${res.ID} granted (TTL ${this.o.ttlSeconds} s)`,
    );
    this.counts.grants += 1;
    this.id = res.ID;
    return res.ID;
  }

  /** One keepalive (the caller's timer runs it every TTL/3); never throws. */
  async keepalive(): Promise<void> {
    const lease = this.id;
    if (lease === undefined || this.busy) return;
    this.busy = true;
    try {
      const stream = await this.o.client.leaseClient.leaseKeepAlive(this.deadline);
      const ttl = await new Promise<string>((resolve, reject) => {
        stream.on('data', (res: { TTL: string }) => resolve(res.TTL));
        stream.on('error', reject);
        stream.on('end', () => reject(new Error('keepalive stream ended')));
        stream.write({ ID: lease });
      }).finally(() => stream.end());
      if (Number(ttl) <= 0) {
        if (this.id === lease) {
          this.o.logger.warn({ lease }, `etcd: lease ${lease} expired; publishing again on a new one`);
          this.counts.losses += 1;
          this.id = undefined;
          this.o.onNeedReconcile();
        }
      } else {
        this.counts.renewals += 1;
      }
      if (Number(ttl) > 0 && this.suspect) {
        this.suspect = false;
        this.o.logger.info({ lease }, 'etcd: keepalive answered again; reconciling');
        this.o.onNeedReconcile();
      }
    } catch (err) {
      this.counts.keepaliveFailures += 1;
      if (credentialProblem(err) !== undefined) {
        // The password or the role changed on the etcd side while publishing: let the sync loop find
        // out, say so in the credential error line and retry at backoff-max.
        if (!this.suspect) this.o.onNeedReconcile();
      } else if (!this.suspect) {
        this.o.logger.warn(
          { lease, err: describeEtcdError(err) },
          `etcd: lease keepalive failed: ${describeEtcdError(err)}`,
        );
      }
      this.suspect = true;
    } finally {
      this.busy = false;
    }
  }

  /** Revokes the lease: every key on it goes at once. Throws when etcd does not answer. */
  async revoke(lease: string): Promise<void> {
    await this.o.client.leaseClient.leaseRevoke({ ID: lease }, this.deadline);
  }
}
