export const PLACEHOLDER = 'publisher-etcd: see issue 4';
