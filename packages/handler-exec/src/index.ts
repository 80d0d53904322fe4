export { DEFAULT_SCRIPT_TIMEOUT_S, ScriptHandler } from './script-handler.js';
export { findScript, scriptCandidates } from './script-path.js';
export type { ScriptLookup } from './script-path.js';
