export { OVSHandler } from './ovs-handler.js';
export type { OVSHandlerOptions, ReconcileResult } from './ovs-handler.js';
export { EXTERNAL_IDS, LABELS, parseParams, portSpecFor, wantsOvs } from './config.js';
export type { InterfaceSettings, OvsParams, PortSpec, TxOffload } from './config.js';
export { OvsClient, parseTable } from './ovsdb.js';
export type { OvsBridge, OvsInterface } from './ovsdb.js';
export * from './validate.js';
