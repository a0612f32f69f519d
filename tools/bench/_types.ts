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
  run(ctx: GpuContext, report: (r: BenchResult) => void, options: { quick: boolean }): Promise<void>;
}
