// Types of the golden-case conformance runner: a case file, the context a handler gets, and its verdict.
import type { GpuContext } from "../gpu/context.ts";
import type { NpyArray } from "../formats/npy.ts";

/** One golden/<case>.json (fields as the fixture READMEs describe). */
export interface GoldenCase {
  case: string;
  kind: string;
  model?: string | null;
  description?: string;
  // deno-lint-ignore no-explicit-any
  inputs: Record<string, any>;
  // deno-lint-ignore no-explicit-any
  expected: Record<string, any>;
  // deno-lint-ignore no-explicit-any
  tolerance?: Record<string, any>;
  /** Absolute path of the JSON file. */
  file: string;
}

export interface CaseContext {
  /** Root of the fixture set (holds golden/, sat/, icetk/, cluster_label.npy). */
  fixtureDir: string;
  gpu: GpuContext;
  /** The fixture's official files converted by the project's converter (converted once, on first use). */
  modelDir(): Promise<string>;
  /** Reads an array named in a case: a path relative to golden/ or to the set root, or {npy: path}. */
  npy(ref: string | { npy: string }): Promise<NpyArray>;
  /** Absolute path of a file named relative to the set root. */
  path(rel: string): string;
}

export interface CaseResult {
  pass: boolean;
  /** Error figures against the case's tolerances, one line. */
  detail: string;
}

export type KindHandler = (c: GoldenCase, cx: CaseContext) => Promise<CaseResult>;
