// `deno task conformance [FIXTURE_DIR] [--kind k1,k2] [--case REGEX] [--model DIR] [--weights source|f16|f32]`:
// converts the fixture's official files with the project's converter (default: at source precision, nothing
// narrowed), runs every golden case, prints PASS/FAIL per case with its error figures and the stored dtype of the
// weights it ran with ("NARROWED" when the conversion narrowed them), and a last line "N passed, N failed".
import { sharedContext } from "../src/gpu/context.ts";
import { runConformance } from "../src/conformance/runner.ts";
import { WEIGHTS_CHOICES, type WeightsChoice } from "../src/convert/convert.ts";

const args = [...Deno.args];
function take(flag: string): string | undefined {
  const i = args.indexOf(flag);
  if (i < 0) return undefined;
  const v = args[i + 1];
  args.splice(i, 2);
  if (v === undefined) {
    console.error(`${flag} needs a value`);
    Deno.exit(2);
  }
  return v;
}
const kindArg = take("--kind");
const caseArg = take("--case");
const modelArg = take("--model");
const weightsArg = take("--weights");
if (weightsArg !== undefined && !(WEIGHTS_CHOICES as readonly string[]).includes(weightsArg)) {
  console.error(`--weights must be one of ${WEIGHTS_CHOICES.join(", ")}, got "${weightsArg}"`);
  Deno.exit(2);
}
const dir = args[0] ?? new URL("../../shared/fixtures/cogview2-tiny", import.meta.url).pathname;

const gpu = await sharedContext();
let passed = 0, failed = 0;
try {
  await runConformance(dir, gpu, {
    kinds: kindArg ? new Set(kindArg.split(",")) : undefined,
    filter: caseArg ? new RegExp(caseArg) : undefined,
    modelDir: modelArg,
    weights: weightsArg as WeightsChoice | undefined,
    onVerdict(v) {
      if (v.pass) passed++;
      else failed++;
      const tag = v.pass ? "PASS" : v.status === "unknown-kind" ? "FAIL (not implemented)" : "FAIL";
      const w = v.weights ? ` weights ${v.weights};` : "";
      console.log(`${tag} ${v.case} [${v.kind}]${w} ${v.detail} (${(v.ms / 1000).toFixed(1)} s)`);
    },
  });
} catch (e) {
  console.error(`conformance: ${(e as Error).message}`);
  failed++;
}
console.log(`${passed} passed, ${failed} failed`);
Deno.exit(failed ? 1 : 0);
