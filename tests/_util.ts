// Test helpers: seeded random data, the shared GPU context, and assertions with diagnostics.
import { sharedContext } from "../src/gpu/context.ts";
import { compareArrays, type Tolerance } from "../src/reference/compare.ts";

export { sharedContext };

/** Deterministic uniform [0,1) generator (mulberry32). */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** n normal(0, std) samples. */
export function randn(n: number, seed: number, std = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.max(r(), 1e-12), v = r();
    out[i] = std * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  return out;
}

/** Throws with the worst element and counts when actual and expected differ beyond the tolerance. */
export function assertClose(
  what: string,
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: Tolerance,
): void {
  const r = compareArrays(actual, expected, tol);
  if (!r.ok) throw new Error(`${what}: ${r.summary}`);
}

/**
 * Runs `fn` with the environment variable `name` set to `value` (unset where undefined), then restores what it was,
 * also when `fn` throws (tests that flip a switch such as COGVIEW2_UNROLL).
 */
export async function withEnv<T>(name: string, value: string | undefined, fn: () => Promise<T>): Promise<T> {
  const before = Deno.env.get(name);
  const put = (v: string | undefined) => v === undefined ? Deno.env.delete(name) : Deno.env.set(name, v);
  put(value);
  try {
    return await fn();
  } finally {
    put(before);
  }
}
