export const PLACEHOLDER = 'handler-ovs: see issue 5';
