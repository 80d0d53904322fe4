import { describe, expect, it } from 'vitest';
import {
  checkBridgeName,
  checkCidr,
  checkInterfaceName,
  checkIPv4,
  checkMac,
  checkMtu,
  checkOvsDb,
  checkVlan,
} from '../src/validate.js';
import { parseParams } from '../src/config.js';

describe('checkInterfaceName', () => {
  it.each(['eth0', 'eth1', 'ovs_a-1', 'a', 'x'.repeat(15), 'vlan.10'])('accepts %s', (v) => {
    expect(checkInterfaceName(v)).toBeUndefined();
  });
  it.each(['', 'x'.repeat(16), '.', '..', 'eth 0', 'a/b', 'a:b', '-a', '.a', 'a;rm -rf /', '$(id)', 'é'])(
    'rejects %j',
    (v) => {
      expect(checkInterfaceName(v)).toMatch(/interface name/);
    },
  );
  it('bridges follow the same rules', () => {
    expect(checkBridgeName('br-int')).toBeUndefined();
    expect(checkBridgeName('br int')).toBeDefined();
  });
});

describe('checkIPv4 / checkCidr', () => {
  it('accepts addresses', () => {
    expect(checkIPv4('10.0.0.1')).toBeUndefined();
    expect(checkIPv4('255.255.255.255')).toBeUndefined();
  });
  it.each(['10.0.0', '256.1.1.1', '01.2.3.4', '1.2.3.4 ', 'a.b.c.d', ''])('rejects address %j', (v) => {
    expect(checkIPv4(v)).toMatch(/IPv4/);
  });
  it.each(['10.0.0.5/24', '192.168.1.1/32', '10.0.0.0/31', '10.1.2.3/8'])('accepts CIDR %s', (v) => {
    expect(checkCidr(v)).toBeUndefined();
  });
  it('rejects bad CIDRs with a reason', () => {
    expect(checkCidr('10.0.0.5')).toMatch(/prefix length/);
    expect(checkCidr('10.0.0.5/33')).toMatch(/between 1 and 32/);
    expect(checkCidr('10.0.0.5/0')).toMatch(/between 1 and 32/);
    expect(checkCidr('10.0.0.0/24')).toMatch(/network or broadcast/);
    expect(checkCidr('10.0.0.255/24')).toMatch(/network or broadcast/);
    expect(checkCidr('300.0.0.1/24')).toMatch(/not an IPv4/);
    expect(checkCidr('10.0.0.1/24 dev lo')).toBeDefined();
  });
});

describe('checkMac', () => {
  it('accepts unicast MACs', () => {
    expect(checkMac('02:42:ac:11:00:02')).toBeUndefined();
    expect(checkMac('AA:BB:CC:DD:EE:FE')).toBeUndefined();
  });
  it('rejects others', () => {
    expect(checkMac('02:42:ac:11:00')).toMatch(/not a MAC/);
    expect(checkMac('01:00:5e:00:00:01')).toMatch(/multicast/);
    expect(checkMac('00:00:00:00:00:00')).toMatch(/all-zero/);
    expect(checkMac('02-42-ac-11-00-02')).toMatch(/not a MAC/);
  });
});

describe('checkMtu / checkVlan', () => {
  it('MTU 68–65535', () => {
    expect(checkMtu('1500')).toBeUndefined();
    expect(checkMtu('68')).toBeUndefined();
    expect(checkMtu('67')).toMatch(/between 68 and 65535/);
    expect(checkMtu('70000')).toMatch(/between/);
    expect(checkMtu('15x')).toMatch(/not a number/);
    expect(checkMtu('')).toMatch(/not a number/);
  });
  it('VLAN 0–4094', () => {
    expect(checkVlan('0')).toBeUndefined();
    expect(checkVlan('4094')).toBeUndefined();
    expect(checkVlan('4095')).toMatch(/between 0 and 4094/);
    expect(checkVlan('-1')).toMatch(/not a VLAN/);
    expect(checkVlan('10 ')).toMatch(/not a VLAN/);
  });
});

describe('checkOvsDb', () => {
  it('accepts unix, tcp and ssl addresses', () => {
    expect(checkOvsDb('unix:/var/run/openvswitch/db.sock')).toBeUndefined();
    expect(checkOvsDb('tcp:127.0.0.1:6640')).toBeUndefined();
    expect(checkOvsDb('ssl:[::1]:6640')).toBeUndefined();
  });
  it('rejects others', () => {
    expect(checkOvsDb('db.sock')).toMatch(/OVSDB address/);
    expect(checkOvsDb('unix:relative')).toMatch(/OVSDB address/);
    expect(checkOvsDb('tcp:host:1')).toMatch(/OVSDB address/);
  });
});

describe('parseParams', () => {
  it('an unknown key is a problem with a suggestion (ovs-brige used to leave the default bridge in place)', () => {
    expect(parseParams({ 'ovs-brige': 'br0' }).problems).toEqual([
      {
        key: 'ovs-brige',
        reason: expect.stringMatching(/^unknown key \(did you mean ovs-bridge\?\); known keys: ovs-bridge, /),
      },
    ]);
  });
  it('ovs-db=null is the text null, not the system OVSDB', () => {
    expect(parseParams({ 'ovs-db': 'null' }).problems).toEqual([
      { key: 'ovs-db', reason: expect.stringMatching(/^"null": not an OVSDB address/) },
    ]);
  });
});
