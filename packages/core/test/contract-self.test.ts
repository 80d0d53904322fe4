/**
 * The contract suite against itself: it passes on a correct handler, and each of its checks fails on
 * a handler built to break that one rule (a suite that cannot fail proves nothing).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { contractChecks, type ContractSuiteOptions, handlerContractSuite } from '../src/contract.js';
import { BaseHandler, type HandlerClass, type HandlerContext } from '../src/index.js';

/** A correct handler: records what it handled. */
class MinimalHandler extends BaseHandler {
  seen: string[] = [];
  handle(event: string): void {
    this.seen.push(event);
  }
}

const recordsEvents: ContractSuiteOptions['effect'] = ({ handler }) => {
  expect((handler as MinimalHandler).seen).toEqual(['none', 'start', 'die', 'destroy']);
};

handlerContractSuite({
  name: 'MinimalHandler (BaseHandler subclass)',
  handlerClass: MinimalHandler,
  effect: recordsEvents,
});

class DoesNothing extends BaseHandler {
  seen: string[] = [];
  handle(): void {}
}

class ThrowsOnGhosts extends BaseHandler {
  handle(event: string, _id: string, context?: HandlerContext): void {
    // A TypeError on every die/destroy of a container it has no inspection of.
    if (event === 'die' || event === 'destroy') void (context?.container as unknown as { Name: string }).Name.length;
  }
}

class IgnoresSignal extends BaseHandler {
  async handle(): Promise<void> {
    await new Promise((r) => setTimeout(r, 3000));
  }
}

class LeaksInterval extends BaseHandler {
  private timer: NodeJS.Timeout | undefined;
  start(): void {
    this.timer = setInterval(() => undefined, 1000);
  }
  stop(): void {
    void this.timer; // never cleared
  }
  handle(): void {}
}

class CallsEngineAfterStop extends BaseHandler {
  stop(): void {
    setTimeout(() => void this.agent.docker.ping(), 20);
  }
  handle(): void {}
}

class CallsEngineWhenBuilt extends BaseHandler {
  constructor(...args: ConstructorParameters<typeof BaseHandler>) {
    super(...args);
    void this.agent.docker.ping();
  }
  handle(): void {}
}

const dir = mkdtempSync(join(tmpdir(), 'glue-contract-neg-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const checks = (handlerClass: HandlerClass, extra: Partial<ContractSuiteOptions> = {}) =>
  contractChecks({ name: handlerClass.name, handlerClass, abortBoundMs: 300, ...extra }, dir);

describe('the contract suite fails broken handlers', () => {
  it('a handler that does nothing fails the effect its suite names', async () => {
    await expect(checks(DoesNothing, { effect: recordsEvents }).handlesEvents()).rejects.toThrow();
  });
  it('a TypeError on die/destroy of an unknown container fails ghostEvents (unless allowed, and then only with a message)', async () => {
    await expect(checks(ThrowsOnGhosts).ghostEvents()).rejects.toThrow(
      /die of a container it never saw failed: .*Cannot read/,
    );
    await expect(checks(ThrowsOnGhosts, { allow: { ghostEventFailure: true } }).ghostEvents()).resolves.toBeUndefined();
  });
  it('ignoring the stop signal fails honoursSignal', async () => {
    await expect(checks(IgnoresSignal).honoursSignal()).rejects.toThrow(
      /still running \d+ ms after the daemon's signal was aborted \(bound 300 ms\)/,
    );
  });
  it('an interval left running by start() fails startStop', async () => {
    await expect(checks(LeaksInterval).startStop()).rejects.toThrow(/1 timer\(s\) still pending after stop\(\)/);
  });
  it('an engine call after stop() fails startStop', async () => {
    await expect(checks(CallsEngineAfterStop).startStop()).rejects.toThrow(
      /the engine was called after stop\(\): ping/,
    );
  });
  it('an engine call in the constructor fails constructsQuietly', () => {
    expect(() => checks(CallsEngineWhenBuilt).constructsQuietly()).toThrow(/the constructor called the engine: ping/);
  });
  it('something that is not a handler class fails shape', () => {
    expect(() => checks({ handle: () => undefined } as unknown as HandlerClass).shape()).toThrow(
      /is not a handler class/,
    );
  });
});
