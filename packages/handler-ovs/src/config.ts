import { createHash } from 'node:crypto';
import {
  checkParams,
  type ContainerInspectInfo,
  containerName,
  type GlueErrorOptions,
  LabelError,
  param,
  type ParamProblem,
  type ParamRule,
} from '@glue/core';
import {
  checkBridgeName,
  checkCidr,
  checkInterfaceName,
  checkIPv4,
  checkMac,
  checkMtu,
  checkOvsDb,
  checkVlan,
  parseIPv4,
} from './validate.js';

/** Labels a container can carry to choose (or override) how it is plugged. */
export const LABELS = {
  bridge: 'glue_ovs_bridge',
  interface: 'glue_ovs_interface',
  ip: 'glue_ovs_ip',
  gateway: 'glue_ovs_gateway',
  mac: 'glue_ovs_mac',
  mtu: 'glue_ovs_mtu',
  vlan: 'glue_ovs_vlan',
} as const;

/** external_ids keys on the OVS Interface. The first two are the ones `ovs-docker` writes. */
export const EXTERNAL_IDS = {
  container: 'container_id',
  iface: 'container_iface',
  engine: 'glue_engine',
} as const;

export type TxOffload = 'auto' | 'off' | 'on';

/** Interface settings: from `ovs-options` in the INI, overridden per container by labels. */
export interface InterfaceSettings {
  cidr?: string | undefined;
  gateway?: string | undefined;
  mac?: string | undefined;
  mtu?: number | undefined;
  vlan?: number | undefined;
}

/** `[params]`, checked. */
export interface OvsParams {
  bridge: string | undefined;
  iface: string | undefined;
  defaults: InterfaceSettings;
  db: string | undefined;
  /** Attach containers run with `--network none` (as the original did). */
  networkNone: boolean;
  txOffload: TxOffload;
  timeoutMs: number;
  /** How often the bridge is reconciled besides `none` (ms; 0: never). */
  reconcileIntervalMs: number;
}

/** What to build for one container. */
export interface PortSpec {
  containerId: string;
  containerName: string;
  pid: number;
  bridge: string;
  /** Name inside the container. */
  iface: string;
  /** The host end of the veth, which is also the OVS port and interface name. */
  hostPort: string;
  /** Temporary name of the container end before it is moved and renamed. */
  peer: string;
  settings: InterfaceSettings;
}

/** `ovs-docker add-port` options the original's `ovs-options` passed through, plus `--vlan`. */
const OPTION_KEYS: Record<string, keyof InterfaceSettings> = {
  '--ipaddress': 'cidr',
  '--gateway': 'gateway',
  '--macaddress': 'mac',
  '--mtu': 'mtu',
  '--vlan': 'vlan',
};

/** `ovs-options`: ovs-docker style `--mtu=1450 --vlan=12 ...`, each token checked, then across them. */
const ovsOptions: ParamRule<InterfaceSettings> = (raw) => {
  const defaults: InterfaceSettings = {};
  if (raw === undefined) return { ok: true, value: defaults };
  const reasons: string[] = [];
  for (const token of raw.split(/\s+/)) {
    const m = /^(--[a-z]+)=(.*)$/.exec(token);
    const field = m ? OPTION_KEYS[m[1]!] : undefined;
    if (!m || !field) {
      reasons.push(
        `${JSON.stringify(token)}: not one of ${Object.keys(OPTION_KEYS)
          .map((k) => `${k}=…`)
          .join(', ')}`,
      );
      continue;
    }
    const reason = settingProblem(field, m[2]!);
    if (reason) reasons.push(`${m[1]}=${JSON.stringify(m[2])}: ${reason}`);
    else setSetting(defaults, field, m[2]!);
  }
  const cross = crossProblem(defaults);
  if (cross) reasons.push(cross);
  return reasons.length > 0 ? { ok: false, reason: reasons } : { ok: true, value: defaults };
};

/** The `[params]` the OVS handler reads, as core's readParams rules. */
const PARAMS = {
  'ovs-bridge': param.check(checkBridgeName),
  'ovs-interface': param.check(checkInterfaceName),
  'ovs-db': param.check(checkOvsDb),
  'ovs-options': ovsOptions,
  'network-none': param.boolean(true),
  'tx-offload': param.oneOf(['auto', 'off', 'on'], 'auto'),
  timeout: param.number({ default: 15, min: 0.1, max: 600, unit: 'seconds', scale: 1000 }),
  'reconcile-interval': param.number({ default: 60, min: 0, max: 86_400, unit: 'seconds', scale: 1000 }),
};

export const PARAM_KEYS = Object.keys(PARAMS);

/** Reads and checks `[params]`; every problem is reported, not just the first. */
export function parseParams(params: Readonly<Record<string, string>>): { params: OvsParams; problems: ParamProblem[] } {
  const { values: v, problems } = checkParams(params, PARAMS);
  return {
    params: {
      bridge: v['ovs-bridge'],
      iface: v['ovs-interface'],
      defaults: v['ovs-options'] ?? {},
      db: v['ovs-db'],
      networkNone: v['network-none'] ?? true,
      txOffload: v['tx-offload'] ?? 'auto',
      timeoutMs: v.timeout ?? 15_000,
      reconcileIntervalMs: v['reconcile-interval'] ?? 60_000,
    },
    problems,
  };
}

function settingProblem(field: keyof InterfaceSettings, value: string): string | undefined {
  switch (field) {
    case 'cidr':
      return checkCidr(value);
    case 'gateway':
      return checkIPv4(value);
    case 'mac':
      return checkMac(value);
    case 'mtu':
      return checkMtu(value);
    case 'vlan':
      return checkVlan(value);
  }
}

function setSetting(settings: InterfaceSettings, field: keyof InterfaceSettings, value: string): void {
  if (field === 'mtu' || field === 'vlan') settings[field] = Number(value);
  else settings[field] = value;
}

/** The gateway must be inside the interface's subnet, or `ip route` refuses it. */
function crossProblem(s: InterfaceSettings): string | undefined {
  if (s.cidr === undefined || s.gateway === undefined) return undefined;
  const [addr, len] = s.cidr.split('/') as [string, string];
  const toInt = (ip: string): number => (parseIPv4(ip) ?? [0, 0, 0, 0]).reduce((acc, p) => acc * 256 + p, 0);
  const prefix = Number(len);
  const size = 2 ** (32 - prefix);
  if (Math.floor(toInt(addr) / size) !== Math.floor(toInt(s.gateway) / size))
    return `gateway ${s.gateway} is not inside ${s.cidr}`;
  if (toInt(addr) === toInt(s.gateway)) return `gateway ${s.gateway} is the interface's own address`;
  return undefined;
}

const SETTING_LABELS: [keyof InterfaceSettings, string][] = [
  ['cidr', LABELS.ip],
  ['gateway', LABELS.gateway],
  ['mac', LABELS.mac],
  ['mtu', LABELS.mtu],
  ['vlan', LABELS.vlan],
];

/** True when this handler plugs the container: network mode `none` (if enabled) or a bridge label. */
export function wantsOvs(info: ContainerInspectInfo, params: OvsParams): boolean {
  const labels = info.Config?.Labels ?? {};
  if (labels[LABELS.bridge] !== undefined) return true;
  return params.networkNone && info.HostConfig?.NetworkMode === 'none';
}

/**
 * Why a network mode cannot get an OVS port, or undefined when it can. With `host` the container's
 * namespace is the host's: the veth would be renamed, addressed and given the default route on the
 * host itself. `container:<id>` shares another container's namespace, which is not this one's to change.
 */
export function networkModeProblem(mode: string | undefined): string | undefined {
  if (mode === 'host')
    return "network mode host: the container uses the host's network namespace, which Glue will not rename, address or re-route (run it with --network none or a Docker network)";
  if (mode?.startsWith('container:'))
    return `network mode ${mode}: the container shares another container's network namespace; label that container instead`;
  return undefined;
}

/**
 * What to build for a container, from params and its labels. Undefined when the container is not
 * for this handler (or has no bridge at all). Throws a LabelError naming container, label and value
 * (tagged with `tag`: the handler and INI file), also for a container in the host's network namespace
 * or another container's.
 */
export function portSpecFor(
  info: ContainerInspectInfo,
  params: OvsParams,
  tag: GlueErrorOptions = {},
): PortSpec | undefined {
  if (!wantsOvs(info, params)) return undefined;
  const name = containerName(info) || info.Id.slice(0, 12);
  const labels = info.Config?.Labels ?? {};
  const modeProblem = networkModeProblem(info.HostConfig?.NetworkMode);
  if (modeProblem) throw new LabelError(name, LABELS.bridge, labels[LABELS.bridge] ?? '', modeProblem, tag);
  const label = (key: string, fn: (v: string) => string | undefined): string | undefined => {
    const raw = labels[key];
    if (raw === undefined) return undefined;
    const reason = fn(raw);
    if (reason) throw new LabelError(name, key, raw, reason, tag);
    return raw;
  };
  const bridge = label(LABELS.bridge, checkBridgeName) ?? params.bridge;
  if (bridge === undefined) return undefined;
  const networkNone = info.HostConfig?.NetworkMode === 'none';
  // Docker already owns eth0 unless the container runs with --network none.
  const iface = label(LABELS.interface, checkInterfaceName) ?? params.iface ?? (networkNone ? 'eth0' : 'eth1');
  const settings: InterfaceSettings = { ...params.defaults };
  for (const [field, key] of SETTING_LABELS) {
    const v = label(key, (value) => settingProblem(field, value));
    if (v !== undefined) setSetting(settings, field, v);
  }
  const cross = crossProblem(settings);
  if (cross) {
    // Blame the label that brought the conflict in (the gateway if both came from labels).
    const key = labels[LABELS.gateway] !== undefined ? LABELS.gateway : LABELS.ip;
    throw new LabelError(name, key, labels[key] ?? '', cross, tag);
  }
  // The bridge is part of the name: after a change of bridge the old port is not mistaken for the new one.
  const hash = createHash('sha1').update(`${info.Id}/${iface}/${bridge}`).digest('hex').slice(0, 12);
  return {
    containerId: info.Id,
    containerName: name,
    pid: info.State?.Pid ?? 0,
    bridge,
    iface,
    hostPort: `glv${hash}`,
    peer: `glp${hash}`,
    settings,
  };
}
