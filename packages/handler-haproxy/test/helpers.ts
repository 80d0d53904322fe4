import { createServer } from 'node:net';
import { captureLogger } from '@glue/core/contract';
import { balancerMain } from '../src/balancer.js';
import type { Router } from '../src/router.js';

export interface RunningBalancer {
  handler: Router;
  /** Every log line so far (JSON objects). */
  logs: Array<Record<string, unknown> & { msg: string }>;
  /** Stops glue-balancer (as SIGTERM would) and returns its exit code. */
  stop: () => Promise<number>;
}

/** Runs `glue-balancer -w ...args` in this process, as the bin would, with a captured log. */
export async function startBalancer(args: string[]): Promise<RunningBalancer> {
  const { logger, lines: logs } = captureLogger();
  let stop!: (s: string) => void;
  const stopSignal = new Promise<string>((r) => (stop = r));
  let stderr = '';
  let ready!: (h: Router) => void;
  const handlerReady = new Promise<Router>((r) => (ready = r));
  const exit = balancerMain(['-w', ...args], { logger, stopSignal, stderr: (t) => (stderr += t), onReady: ready });
  const handler = await Promise.race([
    handlerReady,
    exit.then((code) => Promise.reject(new Error(`glue-balancer exited with ${code}: ${stderr}`))),
  ]);
  return {
    handler,
    logs,
    stop: async () => {
      stop('SIGTERM');
      return exit;
    },
  };
}

export interface FakeRuntime {
  /** Every command received, trimmed, in order. */
  commands: string[];
  /** When set, `del server` is refused as HAProxy refuses a server with connections attached. */
  refuseDelete: boolean;
  /** Current sessions per backend as `show stat` reports them (absent: 0). */
  sessions: Map<string, number>;
  close: () => Promise<void>;
}

/**
 * A fake HAProxy runtime socket at `path` that records commands and answers like HAProxy 2.6.
 * `show info` reports a new worker PID every time, so reloads never wait for one.
 */
export async function fakeRuntime(path: string, firstPid = 4000): Promise<FakeRuntime> {
  let pid = firstPid;
  const runtime: FakeRuntime = { commands: [], refuseDelete: false, sessions: new Map(), close: async () => {} };
  const server = createServer((c) => {
    let buf = '';
    c.on('data', (d) => {
      buf += d.toString();
      if (!buf.endsWith('\n')) return;
      const cmd = buf.trim();
      runtime.commands.push(cmd);
      let answer = '';
      if (cmd === 'show info') answer = `Name: HAProxy\nPid: ${(pid += 1)}\n`;
      else if (cmd.startsWith('add server')) answer = 'New server registered.\n';
      else if (cmd.startsWith('del server'))
        answer = runtime.refuseDelete
          ? 'Server still has connections attached to it, cannot remove it.\n'
          : 'Server deleted.\n';
      else if (cmd.includes(' addr ')) answer = 'IP changed\n';
      else if (cmd.startsWith('show stat')) {
        const rows = Array.from(
          { length: 64 },
          (_, i) => `glue_host_${i},BACKEND,0,0,${runtime.sessions.get(`glue_host_${i}`) ?? 0},0,`,
        );
        answer = `# pxname,svname,qcur,qmax,scur,smax,\n${rows.join('\n')}\n`;
      }
      c.end(answer);
    });
  });
  await new Promise<void>((r) => server.listen(path, r));
  runtime.close = () => new Promise<void>((r) => server.close(() => r()));
  return runtime;
}
