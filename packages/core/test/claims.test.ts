import { describe, expect, it } from 'vitest';
import { claimProblems } from '../src/claims.js';
import { IniDocument } from '../src/index.js';

const handler = (name: string, claims: { what: string; key: string }[], text = '[params]\nprotocols=udp,tcp\n') => ({
  name,
  file: `/etc/glue/${name}`,
  instance: { handle: () => undefined, claims, ini: new IniDocument(`/etc/glue/${name}`, text) },
});

describe('claimProblems', () => {
  it("two handlers claiming the same labels are one problem naming both, at the later one's key and line", () => {
    const tcp = 'glue_tcp_<port>_port labels';
    const problems = claimProblems([
      handler('lb.ini', [{ what: tcp, key: 'tcp-ports' }]),
      handler('l4.ini', [
        { what: 'glue_udp_<port>_port labels', key: 'protocols' },
        { what: tcp, key: 'protocols' },
      ]),
    ]);
    expect(problems).toEqual([
      {
        file: '/etc/glue/l4.ini',
        section: 'params',
        key: 'protocols',
        line: 2,
        message:
          'glue_tcp_<port>_port labels are claimed by both lb.ini ([params] tcp-ports) and l4.ini ([params] protocols): one port must be balanced by one handler; change one of the two',
      },
    ]);
  });

  it('different claims, or none, are no problem', () => {
    expect(
      claimProblems([handler('a.ini', [{ what: 'x', key: 'k' }]), handler('b.ini', [{ what: 'y', key: 'k' }])]),
    ).toEqual([]);
    expect(claimProblems([{ name: 'inline', file: undefined, instance: { handle: () => undefined } }])).toEqual([]);
  });
});
