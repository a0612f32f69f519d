// Types shared by benchmark suites: one result row per measurement, printed as a table or JSON.
import type { GpuContext } from "../../src/gpu/context.ts";

export interface BenchResult {
  name: string;
  params: Record<string, string | number | boolean>;
  value: number;
  unit: string;
  /** What this row is compared to (e.g. "cpu_ts_matmul"), when it is a comparison. */
  baseline?: string;
}

export interface BenchSuite {
  /** Short name used by --only. */
  name: string;
  description: string;
  run(ctx: GpuContext, report: (r: BenchResult) => void, options: BenchOptions): Promise<void>;
}

export interface BenchOptions {
  quick: boolean;
  /**
   * A converted model directory (`deno task convert` output) for the suites that otherwise convert the test
   * fixture set at start (coglm, sr): lets them run where tests/testdata is absent (e.g. a device machine).
   */
  model?: string;
  /**
   * `--variants REGEX`: the gemm suite times only the GEMM variants whose name matches (and gemm_tiles, the
   * baseline), e.g. `--variants sgmat` for the tensor-core ones.
   */
  variants?: RegExp;
}
