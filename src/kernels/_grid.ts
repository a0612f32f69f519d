// Workgroup-count helpers shared by kernel launchers (private to src/kernels/).

/** Workgroups for `n` threads of `wgSize` each, folded into y when x would exceed 65535. */
export function grid1d(n: number, wgSize: number): [number, number, number] {
  const groups = Math.ceil(n / wgSize);
  if (groups <= 65535) return [groups, 1, 1];
  const y = Math.ceil(groups / 65535);
  return [Math.ceil(groups / y), y, 1];
}

/** Throws a launcher error naming the kernel and the offending argument. */
export function check(cond: unknown, kernel: string, what: string): asserts cond {
  if (!cond) throw new Error(`${kernel}: ${what}`);
}
