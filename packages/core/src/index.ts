export { BaseHandler, isHandlerClass } from './handler.js';
export type { Agent, ContainerInspectInfo, Handler, HandlerClass, HandlerContext, RunMode } from './handler.js';
export { createGlue, Glue } from './glue.js';
export type { GlueEvents, GlueOptions, GlueState, HandlerRun, InlineHandler, RunOnceResult } from './glue.js';
export {
  DEFAULT_CONFIG_DIRS,
  DEFAULT_HANDLER_TIMEOUT_MS,
  loadHandlerConfigs,
  matchesEvent,
  parseBoolean,
  readHandlerConfigs,
  resolveConfigDirs,
  validateHandlerIni,
} from './config-loader.js';
export type { HandlerConfig, ReadConfigsResult } from './config-loader.js';
export { IniDocument } from './ini-document.js';
export { CLASS_ALIASES, loadHandlerClass, loadHandlers, parseClassSpec } from './handler-loader.js';
export type { ClassSpec, LoadedHandler } from './handler-loader.js';
export { ALL, CONTAINER_ACTIONS, isKnownEvent, NONE, noneEvent, parseEngineEvent, STATE_CHANGING_ACTIONS } from './events.js';
export type { ContainerAction, EngineEvent, GlueEvent } from './events.js';
export { ConfigError, errorMessage, formatProblem, GlueError, LabelError, ParamError, printable, quote } from './errors.js';
export { suggestKey, unknownKeyReason } from './params.js';
export { FileReadError, MAX_CONFIG_FILE_BYTES, readRegularFile, readTextFile, regularFileProblem } from './files.js';
export type { ConfigProblem, GlueErrorCode, GlueErrorOptions, ParamProblem } from './errors.js';
export { createLogger, silentLogger } from './logger.js';
export type { LogFormat, Logger, LogLevel } from './logger.js';
export { createDocker, DEFAULT_DOCKER_SOCKET, dockerEndpoint } from './docker-connect.js';
export type { DockerEndpoint } from './docker-connect.js';
export { ContainerStore, containerName } from './container-store.js';
export { KeyedQueue } from './keyed-queue.js';
export { backoffDelay, sleep, withTimeout } from './timing.js';
export { stopSignal } from './signals.js';
export { DEFAULT_WEIGHT, describeLabelProblem, hasRouteLabels, isGlueLabel, MAX_WEIGHT, parseFlag, parseHostList, parseHostname, parseLabels, parseNetworkName, parsePort, parsePrefix, parseWeight, type HttpRoute, type LabelProblem, type LabelResult, type ParsedLabels, type TcpRoute } from './labels.js';
