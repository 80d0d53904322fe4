import type Dockerode from 'dockerode';
import type { ContainerInspectInfo } from 'dockerode';
import type { Agent, RunMode } from './handler.js';
import { type Logger, silentLogger } from './logger.js';
import { createMetrics } from './metrics.js';

export interface FakeContainerSpec {
  id?: string;
  name?: string;
  labels?: Record<string, string>;
  running?: boolean;
  ip?: string;
  networkMode?: string;
  pid?: number;
  health?: 'healthy' | 'unhealthy' | 'starting';
}

let counter = 0;

/** A container inspection with just the fields handlers read, for unit tests. */
export function fakeContainer(spec: FakeContainerSpec = {}): ContainerInspectInfo {
  counter += 1;
  const id = spec.id ?? counter.toString(16).padStart(12, '0').repeat(5).slice(0, 64);
  const running = spec.running ?? true;
  const ip = spec.ip ?? '';
  const info = {
    Id: id,
    Name: `/${spec.name ?? `fake-${counter}`}`,
    Image: 'sha256:fake',
    Config: { Labels: spec.labels ?? {}, Image: 'glue-test/busybox' },
    State: {
      Status: running ? 'running' : 'exited',
      Running: running,
      Paused: false,
      Pid: running ? (spec.pid ?? 4242) : 0,
      ...(spec.health ? { Health: { Status: spec.health } } : {}),
    },
    HostConfig: { NetworkMode: spec.networkMode ?? 'default' },
    NetworkSettings: {
      IPAddress: ip,
      Networks: ip ? { bridge: { IPAddress: ip, Gateway: '', IPPrefixLen: 24 } } : {},
    },
  };
  return info as unknown as ContainerInspectInfo;
}

export interface FakeAgent extends Agent {
  /** Adds or replaces a container the agent knows. */
  put(info: ContainerInspectInfo): void;
  remove(id: string): void;
  /** Engine calls the handler made, as `method` names. */
  readonly calls: string[];
  /** How often triggerNone() was called. */
  nonesTriggered: number;
  /** Aborts `signal`, as a daemon stop would. */
  shutdown(): void;
}

/** An Agent over an in-memory container list and a fake engine: enough for unit and contract tests. */
export function fakeAgent(
  options: { containers?: ContainerInspectInfo[]; logger?: Logger; mode?: RunMode } = {},
): FakeAgent {
  const byId = new Map((options.containers ?? []).map((c) => [c.Id, c]));
  const calls: string[] = [];
  const abort = new AbortController();
  const notFound = (): Error => Object.assign(new Error('no such container'), { statusCode: 404 });
  const docker = {
    info: async () => (calls.push('info'), { ID: 'FAKE:ENGINE', Name: 'fake-engine' }),
    ping: async () => (calls.push('ping'), 'OK'),
    listContainers: async () => (
      calls.push('listContainers'),
      [...byId.values()].map((c) => ({ Id: c.Id, Names: [c.Name], Labels: c.Config.Labels, State: c.State.Status }))
    ),
    getContainer: (id: string) => ({
      id,
      inspect: async () => {
        calls.push('inspect');
        const c = byId.get(id);
        if (!c) throw notFound();
        return c;
      },
    }),
  } as unknown as Dockerode;
  const agent: FakeAgent = {
    docker,
    logger: options.logger ?? silentLogger(),
    signal: abort.signal,
    calls,
    nonesTriggered: 0,
    inspect: (id) => byId.get(id),
    containers: () => [...byId.values()],
    refresh: async (id) => byId.get(id),
    triggerNone: () => {
      agent.nonesTriggered += 1;
    },
    engine: () => ({ id: 'FAKE:ENGINE', name: 'fake-engine', dockerId: 'FAKE:ENGINE' }),
    metrics: createMetrics(),
    mode: options.mode ?? 'watch',
    put: (info) => void byId.set(info.Id, info),
    remove: (id) => void byId.delete(id),
    shutdown: () => abort.abort(),
  };
  return agent;
}
