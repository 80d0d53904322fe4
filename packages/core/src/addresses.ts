/**
 * Where a container can be reached: its address on a network (for a balancer on the same host, or on
 * an overlay, OVS or routed network), or the host port Docker published for a container port (for a
 * balancer on another host).
 */
import { isIPv4, isIPv6 } from 'node:net';
import type { ContainerInspectInfo } from 'dockerode';

/** The container's address: on the chosen network, else the default bridge, else its only network. */
export function chooseAddress(
  info: ContainerInspectInfo,
  network: string | undefined,
): { network: string; ip: string; why: string } | { error: string } {
  const nets = info.NetworkSettings?.Networks ?? {};
  if (network) {
    const ip = nets[network]?.IPAddress ?? '';
    if (!ip)
      return {
        error: `no address on network ${JSON.stringify(network)} (it is on: ${Object.keys(nets).join(', ') || 'none'})`,
      };
    if (!isIPv4(ip)) return { error: `address ${JSON.stringify(ip)} on ${network} is not IPv4` };
    return { network, ip, why: 'chosen by glue_network label or network param' };
  }
  const withIp = Object.entries(nets)
    .filter(([, n]) => n?.IPAddress)
    .sort(([a], [b]) => (a < b ? -1 : 1));
  const bridge =
    nets.bridge?.IPAddress || (info.NetworkSettings as { IPAddress?: string } | undefined)?.IPAddress || '';
  if (bridge && isIPv4(bridge)) return { network: 'bridge', ip: bridge, why: 'default bridge' };
  const first = withIp[0];
  if (!first)
    return { error: `no IP address on any network (network mode ${info.HostConfig?.NetworkMode ?? 'unknown'})` };
  const ip = first[1]?.IPAddress ?? '';
  if (!isIPv4(ip)) return { error: `address ${JSON.stringify(ip)} on ${first[0]} is not IPv4` };
  return {
    network: first[0],
    ip,
    why:
      withIp.length === 1
        ? 'its only network'
        : `first of ${withIp.length} networks by name (set glue_network to choose)`,
  };
}

/** How a route's endpoint is found: the container's own address, or the port Docker published on the host. */
export type AddressMode = 'container' | 'published';

/**
 * The host address and port Docker published for `port/tcp`: a binding to a specific host IP is used
 * as it is, one to every address (`0.0.0.0`, `::`, empty) at `advertise`. Loopback bindings are not
 * reachable from another host; an unpublished port has no endpoint.
 */
export function publishedEndpoint(
  info: ContainerInspectInfo,
  port: number,
  advertise: string,
): { address: string; port: number } | { error: string } {
  const ports =
    (
      info.NetworkSettings as
        { Ports?: Record<string, Array<{ HostIp?: string; HostPort?: string }> | null> } | undefined
    )?.Ports ?? {};
  const bindings = ports[`${port}/tcp`] ?? [];
  if (bindings.length === 0)
    return { error: `container port ${port} is not published (docker run -p HOSTPORT:${port}, or address=container)` };
  for (const b of bindings) {
    const hostPort = Number(b.HostPort);
    if (!Number.isInteger(hostPort) || hostPort < 1 || hostPort > 65535) continue;
    const ip = b.HostIp ?? '';
    if (ip === '' || ip === '0.0.0.0' || ip === '::') return { address: advertise, port: hostPort };
    if (ip.startsWith('127.') || ip === '::1') continue;
    if (isIPv4(ip) || isIPv6(ip)) return { address: ip, port: hostPort };
  }
  return { error: `container port ${port} is published only on loopback, which another host cannot reach` };
}
