import type { ContainerInspectInfo } from 'dockerode';

/** The last inspection of every container Glue has seen, kept past `die` and `destroy`. */
export class ContainerStore {
  private readonly byId = new Map<string, ContainerInspectInfo>();

  get(id: string): ContainerInspectInfo | undefined {
    return this.byId.get(id) ?? (id.length < 64 ? this.findByPrefix(id) : undefined);
  }

  set(info: ContainerInspectInfo): void {
    this.byId.set(info.Id, info);
  }

  delete(id: string): void {
    this.byId.delete(id);
  }

  all(): ContainerInspectInfo[] {
    return [...this.byId.values()];
  }

  ids(): string[] {
    return [...this.byId.keys()];
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
