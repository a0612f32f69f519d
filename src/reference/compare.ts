// Tolerance checks with diagnostics, shared by the kernel tests and the conformance runner.
// Not an assertion library: returns a report; callers decide how to fail.

export interface Tolerance {
  /** Absolute bound. */
  atol: number;
  /** Relative bound (of |expected|), added to atol. Default 0. */
  rtol?: number;
}

export interface CompareReport {
  ok: boolean;
  maxAbs: number;
  /** Index of the worst element (largest excess over its bound). */
  worst: number;
  actual: number;
  expected: number;
  mismatches: number;
  /** One line: "max abs 1.2e-5 at [3] (actual 0.1, expected 0.1000012), 0 of 120 over atol 1e-4". */
  summary: string;
}

/** Elementwise |a - e| <= atol + rtol·|e|, NaN-aware, with the worst element described. */
export function compareArrays(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: Tolerance,
): CompareReport {
  const rtol = tol.rtol ?? 0;
  if (actual.length !== expected.length) {
    return {
      ok: false,
      maxAbs: Infinity,
      worst: -1,
      actual: NaN,
      expected: NaN,
      mismatches: Math.abs(actual.length - expected.length),
      summary: `length ${actual.length} != expected ${expected.length}`,
    };
  }
  let maxAbs = 0, worst = -1, worstExcess = -Infinity, mismatches = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i], e = expected[i];
    const d = Math.abs(a - e);
    const bound = tol.atol + rtol * Math.abs(e);
    const bad = !(d <= bound) && !(a === e); // NaN or inf mismatch counts as bad
    if (bad) mismatches++;
    const excess = Number.isNaN(d) ? Infinity : d - bound;
    if (excess > worstExcess) {
      worstExcess = excess;
      worst = i;
    }
    if (d > maxAbs || Number.isNaN(d)) maxAbs = Number.isNaN(d) ? NaN : d;
  }
  const ok = mismatches === 0;
  const w = worst >= 0 ? worst : 0;
  const summary = `max abs ${fmt(maxAbs)}` +
    (actual.length ? ` (worst [${w}]: actual ${fmt(actual[w])}, expected ${fmt(expected[w])})` : "") +
    `, ${mismatches} of ${actual.length} over atol ${tol.atol}${rtol ? ` + rtol ${rtol}` : ""}`;
  return { ok, maxAbs, worst: w, actual: actual[w], expected: expected[w], mismatches, summary };
}

function fmt(x: number): string {
  return Number.isFinite(x)
    ? (Math.abs(x) < 1e-3 && x !== 0 ? x.toExponential(2) : x.toPrecision(6))
    : String(x);
}
