/**
 * Resolves with the name of the first SIGINT or SIGTERM the process receives. The handlers stay
 * installed for the life of the process: a signal during shutdown must not kill the process by default
 * (neither by Node's default action nor through execa's signal-exit, which re-raises a signal when it
 * finds itself the only listener while a child runs), or a managed HAProxy and running scripts would be
 * left behind. Later signals are passed to `onRepeat`.
 */
export function stopSignal(
  signals: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM'],
  onRepeat: (signal: NodeJS.Signals) => void = () => undefined,
): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    let first = true;
    const on = (sig: NodeJS.Signals): void => {
      if (!first) return onRepeat(sig);
      first = false;
      resolve(sig);
    };
    for (const s of signals) process.on(s, on);
  });
}
