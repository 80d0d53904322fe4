/**
 * The handler contract test suite. Any handler package, ours or a third party's, runs it with one call
 * from a vitest test file:
 *
 *   import { handlerContractSuite } from '@glue/core/contract';
 *   handlerContractSuite({ name: 'MyHandler', handlerClass: MyHandler, params: { foo: 'bar' } });
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { validateHandlerIni } from './config-loader.js';
import { fakeAgent, fakeContainer, type FakeAgent } from './fake-agent.js';
import { type Handler, type HandlerClass, type HandlerContext, isHandlerClass } from './handler.js';
import { IniDocument } from './ini-document.js';
import { type GlueEvent, noneEvent } from './events.js';
import { createLogger, type Logger, type LogLevel } from './logger.js';

export { fakeAgent, fakeContainer };
export type { FakeAgent, FakeContainerSpec } from './fake-agent.js';

export interface ContractSuiteOptions {
  /** Shown in the test names. */
  name: string;
  handlerClass: HandlerClass;
  /** `[params]` of the INI file the handler is constructed with. */
  params?: Record<string, string>;
  /** Events to send; default none, start, die, destroy. */
  events?: string[];
  /** Called before each construction, e.g. to create files the params point at. */
  setup?: (dir: string) => void;
  /** Longest a handle() of the fake world may take. Default 10 s. */
  timeoutMs?: number;
}

/** Writes an INI file for a handler under test and returns its parsed document. */
export function writeHandlerIni(dir: string, name: string, params: Record<string, string>, events = 'all,none'): IniDocument {
  const file = join(dir, name);
  const lines = ['[handler]', 'class=./contract-under-test.js#Handler', `events=${events}`, '', '[params]'];
  for (const [k, v] of Object.entries(params)) lines.push(`${k}=${v}`);
  const text = `${lines.join('\n')}\n`;
  writeFileSync(file, text);
  return new IniDocument(file, text);
}

/** One JSON log line, as pino writes it. */
export interface CapturedLogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

export interface CapturedLogger {
  logger: Logger;
  /** Every line so far, in order. */
  lines: CapturedLogLine[];
  /** The lines at level error (50) and above. */
  errors: () => CapturedLogLine[];
}

/**
 * A logger whose lines a test can read and assert on (what an operator would see).
 * `GLUE_TEST_LOG=1` also copies them to stderr.
 */
export function captureLogger(level: LogLevel = 'debug'): CapturedLogger {
  const lines: CapturedLogLine[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) lines.push(JSON.parse(line) as CapturedLogLine);
      if (process.env.GLUE_TEST_LOG) process.stderr.write(chunk);
      done();
    },
  });
  return { logger: createLogger({ level, destination }), lines, errors: () => lines.filter((l) => l.level >= 50) };
}

/** A handler context for a direct handle() call in tests. */
export function contextFor(agent: FakeAgent, action: string, id: string): HandlerContext {
  const event: GlueEvent = id === '' ? noneEvent() : { action, id, attributes: {}, timeNano: 0n };
  return { event, container: agent.inspect(id), signal: agent.signal };
}

export function handlerContractSuite(options: ContractSuiteOptions): void {
  const events = options.events ?? ['none', 'start', 'die', 'destroy'];
  const timeout = options.timeoutMs ?? 10_000;
  const dir = mkdtempSync(join(tmpdir(), 'glue-contract-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const make = (agent: FakeAgent): Handler => {
    options.setup?.(dir);
    const ini = writeHandlerIni(dir, 'contract.ini', options.params ?? {});
    expect(validateHandlerIni(ini).problems).toEqual([]);
    return new options.handlerClass(agent, ini.path, ini);
  };

  describe(`handler contract: ${options.name}`, () => {
    it('is a class with handle(event, containerId)', () => {
      expect(isHandlerClass(options.handlerClass)).toBe(true);
    });

    it('constructs from (agent, iniFile, ini) without calling the engine', () => {
      const agent = fakeAgent();
      make(agent);
      expect(agent.calls).toEqual([]);
    });

    it('start() and stop() hooks, when present, resolve and stop() is idempotent', async () => {
      const h = make(fakeAgent());
      await h.start?.();
      await h.stop?.();
      await h.stop?.();
    });

    it(`handles ${events.join(', ')} for a labelled running container and for "none"`, { timeout: timeout + 1000 }, async () => {
      const agent = fakeAgent();
      const c = fakeContainer({ name: 'contract-web', ip: '127.0.0.1', labels: { glue_http_80_host: 'contract.example.com' } });
      agent.put(c);
      const h = make(agent);
      await h.start?.();
      try {
        for (const event of events) {
          const id = event === 'none' ? '' : c.Id;
          await h.handle(event, id, contextFor(agent, event, id));
        }
      } finally {
        await h.stop?.();
      }
    });

    it('handles die and destroy of a container it never saw without an unhandled failure', { timeout: timeout + 1000 }, async () => {
      const agent = fakeAgent();
      const h = make(agent);
      await h.start?.();
      const ghost = 'f'.repeat(64);
      try {
        for (const event of ['die', 'destroy']) {
          try {
            await h.handle(event, ghost, contextFor(agent, event, ghost));
          } catch (err) {
            // A handler may refuse, but only with a real Error that says what was wrong.
            expect(err).toBeInstanceOf(Error);
            expect((err as Error).message.length).toBeGreaterThan(0);
          }
        }
      } finally {
        await h.stop?.();
      }
    });

    it('returns promptly once the daemon is stopping (signal aborted)', { timeout: timeout + 1000 }, async () => {
      const agent = fakeAgent();
      const h = make(agent);
      agent.shutdown();
      const started = Date.now();
      await Promise.resolve(h.handle('none', '', contextFor(agent, 'none', ''))).catch((err: unknown) => {
        expect(err).toBeInstanceOf(Error);
      });
      expect(Date.now() - started).toBeLessThan(timeout);
      await h.stop?.();
    });
  });
}
