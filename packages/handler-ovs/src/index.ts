export { OVSHandler } from './ovs-handler.js';
export type { OVSHandlerOptions, ReconcileResult } from './ovs-handler.js';
export { EXTERNAL_IDS, LABELS, parseParams, portSpecFor, wantsOvs } from './config.js';
export type { InterfaceSettings, OvsParams, PortSpec, TxOffload } from './config.js';
export { OvsClient, parseTable } from './ovsdb.js';
export type { OvsBridge, OvsInterface } from './ovsdb.js';
export { DEFAULT_COMMAND_TIMEOUT_MS, execaRunner, formatCommand } from './runner.js';
export type { CommandResult, CommandRunner, RunOptions } from './runner.js';
export * from './validate.js';
