/**
 * The label grammar lives in @glue/core (one vocabulary for every handler: the HAProxy config and the
 * etcd index accept and refuse the same labels, with the same words). Re-exported under the names this
 * package has always exported, so its modules and users keep importing them from here.
 */
export {
  DEFAULT_WEIGHT,
  MAX_WEIGHT,
  parseFlag,
  parseHostList,
  parseHostname,
  parseLabels,
  parseNetworkName,
  parsePort,
  parsePrefix,
  parseWeight,
} from '@glue/core';
export type { HttpRoute, LabelProblem, ParsedLabels, TcpRoute } from '@glue/core';
