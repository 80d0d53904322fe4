import { describe, expect, it } from 'vitest';
import type { ContainerInspectInfo } from 'dockerode';
import { ContainerStore } from '../src/container-store.js';

function inspection(id: string, running: boolean, ip: string): ContainerInspectInfo {
  return {
    Id: id,
    Name: '/web',
    State: { Running: running, Status: running ? 'running' : 'exited' },
    Config: { Labels: { a: 'b' } },
    NetworkSettings: { Networks: { bridge: { IPAddress: ip } } },
  } as unknown as ContainerInspectInfo;
}

const ID = 'f'.repeat(64);

describe('ContainerStore', () => {
  it('keeps the addresses of the last running inspection once the container stopped', () => {
    const store = new ContainerStore();
    store.set(inspection(ID, true, '172.17.0.5'));
    store.set(inspection(ID, false, ''));
    const kept = store.get(ID);
    expect(kept?.State.Running).toBe(false);
    expect(kept?.NetworkSettings.Networks['bridge']?.IPAddress).toBe('172.17.0.5');
  });

  it('takes a new address when the container runs again, and finds containers by a 12+ char prefix', () => {
    const store = new ContainerStore();
    store.set(inspection(ID, true, '172.17.0.5'));
    store.set(inspection(ID, false, ''));
    store.set(inspection(ID, true, '172.17.0.9'));
    expect(store.get(ID.slice(0, 12))?.NetworkSettings.Networks['bridge']?.IPAddress).toBe('172.17.0.9');
    expect(store.get(ID.slice(0, 8))).toBeUndefined();
    store.delete(ID);
    expect(store.all()).toEqual([]);
  });
});
