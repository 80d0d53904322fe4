import { PassThrough } from 'node:stream';
import type Dockerode from 'dockerode';
import type { ContainerInspectInfo } from 'dockerode';
import { fakeContainer } from '../src/fake-agent.js';

/** An in-memory engine: list/inspect/info/ping and an event stream the test writes to. */
export class FakeEngine {
  containers = new Map<string, ContainerInspectInfo>();
  streams: PassThrough[] = [];
  eventQueries: Array<Record<string, unknown>> = [];
  up = true;
  private t = 1_700_000_000_000_000_000n;

  readonly docker = {
    info: async () => this.guard({ ID: 'FAKE', Name: 'fake', SystemTime: new Date().toISOString() }),
    ping: async () => this.guard('OK'),
    listContainers: async () => this.guard([...this.containers.values()].map((c) => ({ Id: c.Id }))),
    getContainer: (id: string) => ({
      inspect: async () => {
        this.guard(null);
        const c = this.containers.get(id);
        if (!c) throw Object.assign(new Error('no such container'), { statusCode: 404 });
        return c;
      },
    }),
    getEvents: async (query: Record<string, unknown>) => {
      this.guard(null);
      this.eventQueries.push(query);
      const s = new PassThrough();
      this.streams.push(s);
      return s;
    },
  } as unknown as Dockerode;

  private guard<T>(v: T): T {
    if (!this.up) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    return v;
  }

  add(spec: Parameters<typeof fakeContainer>[0] = {}): ContainerInspectInfo {
    const c = fakeContainer(spec);
    this.containers.set(c.Id, c);
    return c;
  }

  emit(action: string, id: string): void {
    this.t += 1_000_000n;
    const line = JSON.stringify({
      Type: 'container',
      Action: action,
      Actor: { ID: id, Attributes: {} },
      timeNano: Number(this.t),
    });
    this.streams.at(-1)?.write(`${line}\n`);
  }

  /** Ends the current stream, as an engine restart would. */
  drop(): void {
    this.streams.at(-1)?.end();
  }
}
