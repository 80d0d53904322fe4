/**
 * What users of this package need: the handler, its params reader (glue-balancer's flags come from
 * the same table), the built-in template and what a template sees, glue-balancer's entry point.
 * Everything else is internal; tests import it by path, the bench through dist/internal.js.
 */
export { HAProxyHandler } from './handler.js';
export { PARAM_SPEC, parseHaproxyParams } from './options.js';
export type { HaproxyOptions, ParamSpec } from './options.js';
export { DEFAULT_TEMPLATE } from './template.js';
export type { TemplateContext } from './template.js';
export type { ApplierStats, Mode } from './applier.js';
export { balancerMain } from './balancer.js';
