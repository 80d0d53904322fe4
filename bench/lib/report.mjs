// What every benchmark prints: percentiles and one aligned line per figure, with its goal and the ratio.
// (In bench/lib/, which has no run.mjs, so `pnpm bench` does not run it as a benchmark.)

/** The p-th percentile of `xs` (nearest rank). */
export const pct = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];

/** `what  value unit  goal G unit  ratio R`; nothing for a missing value, no goal part without a goal. */
export function line(what, value, unit, goal) {
  if (value === undefined || Number.isNaN(value)) return;
  const figure = value.toFixed(value < 1 ? 3 : value < 10 ? 1 : 0).padStart(9);
  const target = goal === undefined ? '' : `  goal ${goal} ${unit}  ratio ${(value / goal).toFixed(2)}`;
  console.log(`${what.padEnd(56)} ${figure} ${unit.padEnd(3)}${target}`);
}
