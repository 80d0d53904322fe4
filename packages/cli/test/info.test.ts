import { describe, expect, it, vi } from 'vitest';
import { infoMain, wantsInfo } from '../src/info.js';
import { EXIT } from '../src/options.js';

describe('glue -h / --version without the daemon', () => {
  it('recognises the requests for help and the version only', () => {
    expect(wantsInfo(['-h'])).toBe(true);
    expect(wantsInfo(['-w', '--help'])).toBe(true);
    expect(wantsInfo(['--version'])).toBe(true);
    expect(wantsInfo(['-w', '-c', '/etc/glue.d'])).toBe(false);
    expect(wantsInfo(['-c', '-help'])).toBe(false);
  });

  it('prints help or the version and exits 0', () => {
    const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    try {
      expect(infoMain(['-h'])).toBe(EXIT.OK);
      expect(infoMain(['--version'])).toBe(EXIT.OK);
      expect(out.mock.calls.map((c) => String(c[0])).join('')).toMatch(/Usage: glue[\s\S]*\d+\.\d+\.\d+/);
    } finally {
      out.mockRestore();
    }
  });
});
