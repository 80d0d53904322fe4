export const PLACEHOLDER = 'handler-haproxy: see issue 3';
