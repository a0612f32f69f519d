// Greedy LoPAR through the conformance kind itersr_lopar_greedy: six rounds, round inputs and final tokens.
import { conformanceTest } from "../conformance/_run.ts";
import { fixtureModelDir } from "./_sr_fixture.ts";

conformanceTest("conformance: itersr_lopar_greedy passes on the tiny fixture", ["itersr_lopar_greedy"], {
  count: 1,
  modelDir: fixtureModelDir,
});
