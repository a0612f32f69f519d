// Environment variables read by the GPU layer and the kernels (COGVIEW2_GPU, COGVIEW2_GEMM, ...): one reader that
// treats a process without --allow-env like an unset variable.

/**
 * Values read so far, by name (undefined: unset or unreadable). The kernel launchers read their switches on every
 * launch (COGVIEW2_GEMV per GEMV, COGVIEW2_ATTENTION_WG/_SPLIT per attention: a decode step's 244 dispatches), and
 * Deno.env.get is an op call each time; a change through Deno.env.set / Deno.env.delete (tests flip switches between
 * cases, the tools set COGVIEW2_GPU) clears the cache (watchEnv), so a value read after it is the new one.
 */
const envCache = new Map<string, string | undefined>();
let envWatched: boolean | null = null;

/**
 * Wraps Deno.env.set and Deno.env.delete (once) so that they clear envCache; false where they cannot be wrapped
 * (then readEnv does not cache).
 */
function watchEnv(): boolean {
  if (envWatched !== null) return envWatched;
  try {
    const env = Deno.env, set = env.set, del = env.delete;
    const wrappedSet = function (this: typeof env, key: string, value: string): void {
      envCache.clear();
      set.call(this, key, value);
    };
    const wrappedDelete = function (this: typeof env, key: string): void {
      envCache.clear();
      del.call(this, key);
    };
    env.set = wrappedSet;
    env.delete = wrappedDelete;
    envWatched = env.set === wrappedSet && env.delete === wrappedDelete;
  } catch {
    envWatched = false;
  }
  return envWatched;
}

/** The variable's value, or undefined when it is unset or the process may not read the environment. */
export function readEnv(name: string): string | undefined {
  const hit = envCache.get(name);
  if (hit !== undefined || envCache.has(name)) return hit;
  let v: string | undefined;
  try {
    v = Deno.env.get(name);
  } catch {
    v = undefined; // no --allow-env
  }
  if (watchEnv()) envCache.set(name, v);
  return v;
}

/**
 * `COGVIEW2_TENSOR_CORES`: tensor-core GEMMs where the adapter can run them (src/kernels/matmul.ts gpuGemmPick):
 * "1" the precise variants (A split into f16 hi + lo: the golden tolerances hold), "fast" the plain ones (A rounded
 * to f16: faster, misses them by a hair); unset, "" or "0": off.
 */
export const TENSOR_CORES_ENV = "COGVIEW2_TENSOR_CORES";

/** Which tensor-core GEMMs COGVIEW2_TENSOR_CORES asks for. */
export type TensorCoreMode = "off" | "precise" | "fast";

/**
 * Dawn's adapter toggles that expose tensor cores: `allow_unsafe_apis` lists chromium-experimental-subgroup-matrix,
 * `vulkan_enable_f16_on_nvidia` lifts Dawn's shader-f16 blocklist on NVIDIA's Vulkan drivers (crbug.com/42251215),
 * without which an H200 lists only the integer subgroup-matrix configurations.
 */
export const TENSOR_CORE_TOGGLES = ["vulkan_enable_f16_on_nvidia", "allow_unsafe_apis"];

/** COGVIEW2_TENSOR_CORES read: "1" precise, "fast", unset/""/"0" off; another value is an error naming it. */
export function tensorCoreMode(env = readEnv(TENSOR_CORES_ENV)): TensorCoreMode {
  if (env === undefined || env === "" || env === "0") return "off";
  if (env === "1") return "precise";
  if (env === "fast") return "fast";
  throw new Error(
    `${TENSOR_CORES_ENV}=${env}: expected 1 (precise tensor cores where the adapter has them), ` +
      "fast (A rounded to f16: faster, outside the golden tolerances) or 0",
  );
}

/** Whether COGVIEW2_TENSOR_CORES asks for tensor cores at all (Dawn then gets TENSOR_CORE_TOGGLES). */
export function tensorCoresRequested(env = readEnv(TENSOR_CORES_ENV)): boolean {
  return tensorCoreMode(env) !== "off";
}
