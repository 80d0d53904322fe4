import { Writable } from 'node:stream';
import { createLogger } from '@glue/core';
import { balancerMain, type HAProxyHandler } from '../src/index.js';

export interface RunningBalancer {
  handler: HAProxyHandler;
  /** Every log line so far (JSON objects). */
  logs: Array<Record<string, unknown> & { msg: string }>;
  /** Stops glue-balancer (as SIGTERM would) and returns its exit code. */
  stop: () => Promise<number>;
}

/** Runs `glue-balancer -w ...args` in this process, as the bin would, with a captured log. */
export async function startBalancer(args: string[]): Promise<RunningBalancer> {
  const logs: RunningBalancer['logs'] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) logs.push(JSON.parse(line));
      if (process.env.GLUE_TEST_LOG) process.stderr.write(chunk);
      done();
    },
  });
  const logger = createLogger({ level: 'debug', destination: sink });
  let stop!: (s: string) => void;
  const stopSignal = new Promise<string>((r) => (stop = r));
  let stderr = '';
  let ready!: (h: HAProxyHandler) => void;
  const handlerReady = new Promise<HAProxyHandler>((r) => (ready = r));
  const exit = balancerMain(['-w', ...args], { logger, stopSignal, stderr: (t) => (stderr += t), onReady: ready });
  const handler = await Promise.race([handlerReady, exit.then((code) => Promise.reject(new Error(`glue-balancer exited with ${code}: ${stderr}`)))]);
  return {
    handler,
    logs,
    stop: async () => {
      stop('SIGTERM');
      return exit;
    },
  };
}
