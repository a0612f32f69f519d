// Environment variables read by the GPU layer and the kernels (COGVIEW2_GPU, COGVIEW2_GEMM, ...): one reader that
// treats a process without --allow-env like an unset variable.

/** The variable's value, or undefined when it is unset or the process may not read the environment. */
export function readEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined; // no --allow-env
  }
}
