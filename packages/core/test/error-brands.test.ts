/**
 * Errors stay recognisable across copies of @glue/core: a handler installed with its own copy throws a
 * ParamError the daemon's copy must still see as one. The second copy is simulated by importing the
 * module twice (a query string makes Node load it again: new classes, same shared brand).
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, GlueError, LabelError, ParamError } from '../src/errors.js';

describe('error brands', () => {
  it('instanceof holds across two copies of the module, per kind', async () => {
    // @ts-expect-error -- a query makes the module load again; TypeScript knows no such file.
    const other = (await import('../src/errors.js?second-copy')) as typeof import('../src/errors.js');
    expect(other.ParamError).not.toBe(ParamError);
    const theirs = new other.ParamError('lb.ini', 'mode', 'is not on');
    expect(theirs instanceof ParamError).toBe(true);
    expect(theirs instanceof GlueError).toBe(true);
    expect(theirs instanceof ConfigError).toBe(false);
    expect(theirs instanceof LabelError).toBe(false);
    const ours = new ConfigError([{ file: 'a.ini', message: 'bad' }]);
    expect(ours instanceof other.ConfigError).toBe(true);
    expect(ours instanceof other.ParamError).toBe(false);
  });

  it("a subclass of a handler's own is not mistaken for its parent's other subclasses", () => {
    class MyError extends GlueError {}
    const mine = new MyError('HANDLER_FAILED', 'x');
    expect(mine instanceof MyError).toBe(true);
    expect(mine instanceof GlueError).toBe(true);
    expect(new GlueError('HANDLER_FAILED', 'y') instanceof MyError).toBe(false);
    expect(new ParamError('f', 'k', 'r') instanceof MyError).toBe(false);
    expect({} instanceof GlueError).toBe(false);
    expect(new Error('plain') instanceof GlueError).toBe(false);
  });
});
