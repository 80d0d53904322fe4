import { describe, expect, it } from 'vitest';
import { containerProblems } from '../src/check.js';
import { fakeContainer } from '../src/contract.js';
import type { Handler } from '../src/index.js';

const handler = (extra: Partial<Handler> = {}): { name: string; instance: Handler } => ({
  name: 'h.ini',
  instance: { handle: () => undefined, ...extra },
});

describe('containerProblems (glue check)', () => {
  it('reports routing label problems by the shared grammar, naming container, label and value', () => {
    const c = fakeContainer({
      name: 'web',
      labels: { glue_http_80_host: 'bad host', glue_http_81_host: 'a.example.com', glue_http_81_weight: '300' },
    });
    const out = containerProblems([c], [handler()]);
    expect(out).toHaveLength(2);
    expect(out[0]).toMatch(/^container web: label glue_http_80_host="bad host" /);
    expect(out[1]).toMatch(/^container web: label glue_http_81_weight="300" /);
  });

  it('flags a glue_* label no loaded handler reads (a typo), and adds each handler’s own problems once', () => {
    const c = fakeContainer({ name: 'db', labels: { glue_htp_80_host: 'a.example.com', glue_ovs_vlan: '9999' } });
    const ovs = handler({
      labelPrefixes: ['glue_ovs_'],
      checkContainer: () => [
        { label: 'glue_ovs_vlan', value: '9999', reason: 'is not a VLAN id 0-4095' },
        { label: 'glue_ovs_vlan', value: '9999', reason: 'is not a VLAN id 0-4095' },
      ],
    });
    expect(containerProblems([c], [{ ...ovs, name: 'ovs.ini' }])).toEqual([
      'container db: label glue_htp_80_host="a.example.com" is read by no handler loaded (glue_http_*, glue_tcp_*, glue_network, glue_ovs_*)',
      'container db: label glue_ovs_vlan="9999" is not a VLAN id 0-4095 (ovs.ini)',
    ]);
    // Without the OVS handler, its labels are read by nobody.
    expect(containerProblems([c], [handler()])[1]).toMatch(/glue_ovs_vlan="9999" is read by no handler loaded/);
  });

  it('says nothing of containers without glue_* labels or with good ones; a check that throws is reported', () => {
    const quiet = fakeContainer({ name: 'plain', labels: { other: 'x' } });
    const good = fakeContainer({ name: 'ok', labels: { glue_http_80_host: 'ok.example.com' } });
    expect(containerProblems([quiet, good], [handler()])).toEqual([]);
    const broken = handler({
      checkContainer: () => {
        throw new Error('boom');
      },
    });
    expect(containerProblems([good], [broken])).toEqual(['container ok: h.ini could not check it: boom']);
  });
});
