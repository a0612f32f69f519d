// Workgroup-count helpers shared by kernel launchers (private to src/kernels/).

/** Workgroups for `n` threads of `wgSize` each, folded into y when x would exceed 65535. */
export function grid1d(n: number, wgSize: number): [number, number, number] {
  const groups = Math.ceil(n / wgSize);
  if (groups <= 65535) return [groups, 1, 1];
  const y = Math.ceil(groups / 65535);
  return [Math.ceil(groups / y), y, 1];
}

/**
 * Throws a launcher error naming the kernel and the offending argument. A message with values in it is given as a
 * function, built only when the check fails: launchers run every dispatch, and formatting shapes into a string each
 * time was a measurable part of a decode step's host time.
 */
export function check(cond: unknown, kernel: string, what: string | (() => string)): asserts cond {
  if (!cond) throw new Error(`${kernel}: ${typeof what === "string" ? what : what()}`);
}
