// One Deno test that runs some golden-case kinds of the committed tiny fixture (tests/testdata/cogview2-tiny) through
// the conformance runner and asserts the number of cases and that every verdict passed. Each *_test.ts in this
// folder is a call of conformanceTest.
import assert from "node:assert/strict";
import { runConformance } from "../../src/conformance/runner.ts";
import type { GpuContext } from "../../src/gpu/context.ts";
import { sharedContext } from "../_util.ts";

export const FIXTURE = new URL("../testdata/cogview2-tiny", import.meta.url).pathname;

export interface ConformanceTestOptions {
  /** Only the cases whose name matches. */
  filter?: RegExp;
  /** How many cases must run: exactly `n`, or at least `atLeast`. */
  count: number | { atLeast: number };
  /** The GPU context (default: the shared one); not awaited, so a stand-in may throw on any property read. */
  ctx?: () => GpuContext;
  /** An already converted model directory (default: the runner converts the fixture). */
  modelDir?: () => Promise<string>;
}

export function conformanceTest(name: string, kinds: string[], o: ConformanceTestOptions): void {
  Deno.test({
    name,
    sanitizeResources: false,
    async fn() {
      const ctx = o.ctx ? o.ctx() : await sharedContext();
      const verdicts = await runConformance(FIXTURE, ctx, {
        kinds: new Set(kinds),
        filter: o.filter,
        modelDir: o.modelDir ? await o.modelDir() : undefined,
        onVerdict: (v) => console.log(`${v.case}: ${v.status} (${v.ms.toFixed(0)} ms) ${v.detail}`),
      });
      const got = `${verdicts.length}: ${verdicts.map((v) => v.case).join(", ")}`;
      if (typeof o.count === "number") {
        assert.equal(verdicts.length, o.count, `expected ${o.count} case(s) of ${kinds}, got ${got}`);
      } else {
        assert.ok(
          verdicts.length >= o.count.atLeast,
          `expected ${o.count.atLeast}+ cases of ${kinds}, got ${got}`,
        );
      }
      for (const v of verdicts) assert.ok(v.pass, `${v.case}: ${v.status} ${v.detail}`);
    },
  });
}
