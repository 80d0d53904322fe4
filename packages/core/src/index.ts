export { BaseHandler } from './handler.js';
export type {
  Agent,
  ContainerInspectInfo,
  EngineIdentity,
  Handler,
  HandlerClass,
  HandlerContext,
  RunMode,
} from './handler.js';
export { createGlue, Glue } from './glue.js';
export type {
  GlueEvents,
  GlueOptions,
  GlueState,
  HandlerRun,
  InlineHandler,
  ReadyCheck,
  ReloadResult,
  RunOnceResult,
} from './glue.js';
export {
  DEFAULT_CONFIG_DIRS,
  loadHandlerConfigs,
  parseBoolean,
  readHandlerConfigs,
  resolveConfigDirs,
} from './config-loader.js';
export type { HandlerConfig, ReadConfigsResult } from './config-loader.js';
export { IniDocument } from './ini-document.js';
export { ALL, CONTAINER_ACTIONS, isKnownEvent, NONE, STATE_CHANGING_ACTIONS } from './events.js';
export type { ContainerAction, GlueEvent } from './events.js';
export { ConfigError, errorMessage, formatProblem, GlueError, LabelError, ParamError, quote } from './errors.js';
export { unknownKeyReason } from './params.js';
export { checkParams, param, readParams } from './read-params.js';
export type { ParamRule, ParamValues } from './read-params.js';
export { FileReadError, readRegularFile, readTextFile, regularFileProblem } from './files.js';
export type { ConfigProblem, GlueErrorCode, GlueErrorOptions, ParamProblem } from './errors.js';
export { createLogger, silentLogger } from './logger.js';
export type { LogFormat, Logger, LogLevel } from './logger.js';
export { containerName } from './container-store.js';
export { backoffDelay, sleep } from './timing.js';
export { stopSignal } from './signals.js';
export { Serial } from './serial.js';
export type { HandlerClaim } from './claims.js';
export { DEFAULT_COMMAND_TIMEOUT_MS, execaRunner, formatCommand } from './command.js';
export type { CommandOptions, CommandResult, CommandRunner } from './command.js';
export { processStop } from './launcher.js';
export { chooseAddress, publishedEndpoint } from './addresses.js';
export { rotationReason, signalNumber, StoppingContainers } from './rotation.js';
export { engineIdentity } from './engine-watcher.js';
export type { AddressMode } from './addresses.js';
export {
  DEFAULT_WEIGHT,
  describeLabelProblem,
  hasRouteLabels,
  MAX_WEIGHT,
  parseFlag,
  parseHostList,
  parseHostname,
  parseLabels,
  parseNetworkName,
  parsePort,
  parsePrefix,
  parseWeight,
  type HttpRoute,
  type LabelProblem,
  type LabelResult,
  type ParsedLabels,
  type TcpRoute,
} from './labels.js';
export { createMetrics, followTotal, SECONDS_BUCKETS } from './metrics.js';
export { buildInfo } from './glue-metrics.js';
export type { Counter, Gauge, Histogram, Metrics, MetricSpec } from './metrics.js';
export { opsRequestHandler, parseHttpAddr, startOpsServer } from './ops-http.js';
export type { OpsServer, OpsSources } from './ops-http.js';
export type { CheckReport } from './check.js';
