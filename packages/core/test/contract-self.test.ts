import { handlerContractSuite } from '../src/contract.js';
import { BaseHandler } from '../src/index.js';

/** The contract suite run against a minimal BaseHandler subclass: the suite itself must pass on a correct handler. */
class MinimalHandler extends BaseHandler {
  seen: string[] = [];
  handle(event: string): void {
    this.seen.push(event);
  }
}

handlerContractSuite({ name: 'MinimalHandler (BaseHandler subclass)', handlerClass: MinimalHandler });
