import type { ContainerInspectInfo } from 'dockerode';

/**
 * The last inspection of every container Glue has seen, kept past `die` and `destroy`. When a container
 * stops, the engine's inspection loses its IP addresses; the store keeps the network settings of the
 * last inspection that had them, so `die`, `stop` and `destroy` handlers can still tell which address
 * went away (`State` says the container is no longer running).
 */
export class ContainerStore {
  private readonly byId = new Map<string, ContainerInspectInfo>();

  get(id: string): ContainerInspectInfo | undefined {
    return this.byId.get(id) ?? (id.length < 64 ? this.findByPrefix(id) : undefined);
  }

  set(info: ContainerInspectInfo): void {
    const previous = this.byId.get(info.Id);
    if (previous && info.State?.Running !== true && !hasAddress(info) && hasAddress(previous)) {
      this.byId.set(info.Id, { ...info, NetworkSettings: previous.NetworkSettings });
      return;
    }
    this.byId.set(info.Id, info);
  }

  delete(id: string): void {
    this.byId.delete(id);
  }

  all(): ContainerInspectInfo[] {
    return [...this.byId.values()];
  }

  private findByPrefix(prefix: string): ContainerInspectInfo | undefined {
    if (prefix.length < 12) return undefined;
    for (const [id, info] of this.byId) if (id.startsWith(prefix)) return info;
    return undefined;
  }
}

/** A container's name without the engine's leading slash. */
export function containerName(info: ContainerInspectInfo | undefined): string {
  return info?.Name?.replace(/^\//, '') ?? '';
}

/** Whether any of the container's networks gives it an IPv4 or IPv6 address. */
export function hasAddress(info: ContainerInspectInfo): boolean {
  return Object.values(info.NetworkSettings?.Networks ?? {}).some((n) => Boolean(n?.IPAddress || n?.GlobalIPv6Address));
}
