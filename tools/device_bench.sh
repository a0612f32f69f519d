#!/usr/bin/env bash
# Benchmarks and GPU conformance on a lent GPU machine (the `device` tool), which has no network and takes at most
# 64 MiB of working tree. Two steps:
#   here:   bash tools/device_bench.sh prepare     (fills the git-ignored .dn/ and .gl/; add both to .git/info/exclude)
#   there:  bash tools/device_bench.sh run         (carry [".gl", ".dn"]; results under $OUT)
#   there:  bash tools/device_bench.sh published   (same carry: the published-shape bench at full depth, batch 1 then
#           8, random weights made on the GPU, no model files; each run capped so both fit 8 minutes; stage lines are
#           printed as each stage ends, so a capped run keeps the stages it finished. PUB_ARGS adds flags, e.g.
#           PUB_ARGS="--sr-layers 6" when the full SR depth does not fit; PUB_T1/PUB_T8 are the caps in seconds)
#   there:  bash tools/device_bench.sh kernels     (same carry, ~3 min: `bench --only matmul --quick` — the GEMM variants
#           gemm_tiles (double-buffered K slices), gemm_tiles_1buf and gemm_tiles_f16math at 4096³ f16 weights
#           (gemm_variant_gflops), decode GEMV — then `--only local_attention`; JSON lines in $OUT/kernels.jsonl)
# The tracked test data (46 MiB) plus Deno (29 MiB compressed) exceed 64 MiB: move tests/testdata out of the checkout
# for the duration of the call and put it back afterwards. Results of a run: bench/results/<date>-<gpu>/.
set -uo pipefail
cd "$(dirname "$0")/.."
setup() {
  # DEV_LOCAL=1: a dry run on this machine (no packages unpacked into /, the system's Vulkan driver kept)
  if [ -z "${DEV_LOCAL:-}" ]; then for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig; fi
  mkdir -p /tmp/dn && xz -T0 -dc .dn/deno.xz > /tmp/dn/deno && chmod +x /tmp/dn/deno
  export PATH=/tmp/dn:$PATH XDG_RUNTIME_DIR=/tmp DENO_DIR=$PWD/.dn/cache NO_COLOR=1
  [ -z "${DEV_LOCAL:-}" ] && for f in /usr/share/vulkan/icd.d/nvidia_icd.json /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json \
    /etc/vulkan/icd.d/nvidia_icd.json; do [ -f "$f" ] && export VK_DRIVER_FILES=$f && break; done
  [ -f .dn/dawn.node.xz ] && xz -T0 -dc .dn/dawn.node.xz > /tmp/dn/dawn.node && export COGVIEW2_DAWN_NODE=/tmp/dn/dawn.node
  OUT=${OUT:-out/device}; mkdir -p "$OUT"
  nvidia-smi -L 2>/dev/null || true
}
case "${1:-}" in
prepare)
  set -e
  mkdir -p .dn .gl /tmp/amd64/partial
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  apt-get $o update -qq
  (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
  xz -9 -T2 -c .tools/node_modules/deno/deno > .dn/deno.xz
  xz -9 -T2 -c .tools/node_modules/webgpu/dist/linux-x64/dawn.node > .dn/dawn.node.xz
  DENO_DIR=$PWD/.dn/cache .tools/node_modules/.bin/deno cache tools/bench.ts tools/conformance.ts tools/probe_gpu.ts
  # Size (the tree plus .dn and .gl must stay under 64 MiB): the browser test's playwright-core (8 MiB) is in the
  # lockfile, and Deno wants every lockfile package present under --cached-only, but nothing run there imports it: its
  # package.json alone satisfies the check. Deno's compile caches and SQLite journals are rebuilt there.
  pw=.dn/cache/npm/registry.npmjs.org/playwright-core
  for v in "$pw"/*/; do find "$v" -mindepth 1 -maxdepth 1 ! -name package.json -exec rm -rf {} +; done
  rm -rf .dn/cache/gen .dn/cache/v8_code_cache* .dn/cache/*-wal .dn/cache/*-shm
  rm -rf .dn/cache/gen .dn/model .dn/fx
  F=tests/testdata/cogview2-tiny
  .tools/node_modules/.bin/deno run -A tools/convert.ts --sat $F/sat --icetk $F/icetk --clusters $F/cluster_label.npy --out .dn/model
  rm -f .dn/model/vqvae.safetensors # opened only by the VQ-VAE stage; the cases carried do not need it
  mkdir -p .dn/fx/golden && cp $F/cluster_label.npy .dn/fx/
  cp $F/golden/{coglm,dsr,itersr,local_attention}* .dn/fx/golden/
  rm -f .dn/fx/golden/dsr_forward.{hidden,attention_mask,log_attention_weights}.npy # size
  du -sh .dn .gl
  # what a call carries: tracked files less tests/testdata (moved out during the call), .dn and .gl
  echo "carried: $(( ($(git ls-files -z | grep -zv '^tests/testdata/' | xargs -0 du -cb | tail -n 1 | cut -f1) + \
    $(du -sb .dn .gl | awk '{ s += $1 } END { print s }')) / 1048576 )) MiB of 64"
  ;;
run)
  setup
  timeout 60 deno run -A --cached-only --unstable-webgpu tools/probe_gpu.ts 2>&1 | tee "$OUT/probe.log"
  timeout 200 deno run -A --cached-only --unstable-webgpu tools/conformance.ts .dn/fx --model .dn/model 2>&1 |
    tee "$OUT/conformance.log"
  for s in ${SUITES:-matmul coglm sr local_attention sampling e2e}; do
    echo "== $s" >> "$OUT/bench.log"; rm -f out/bench.json
    timeout "${SUITE_T:-70}" deno run -A --cached-only --unstable-webgpu tools/bench.ts --only "$s" --model .dn/model 2>&1 | tee -a "$OUT/bench.log"
    # one line per suite: {"suite", "results"} with results as `deno task bench --json` writes them
    [ -f out/bench.json ] && deno eval "console.log(JSON.stringify({ suite: '$s', results: JSON.parse(Deno.readTextFileSync('out/bench.json')) }))" >> "$OUT/bench_all.jsonl"
  done
  ;;
published)
  setup
  timeout 60 deno run -A --cached-only --unstable-webgpu tools/probe_gpu.ts 2>&1 | tee "$OUT/probe.log"
  for b in 1 8; do
    t=$([ "$b" = 1 ] && echo "${PUB_T1:-200}" || echo "${PUB_T8:-220}")
    # shellcheck disable=SC2086
    timeout "$t" deno run -A --cached-only --unstable-webgpu tools/bench.ts --shape published --batch "$b" \
      ${PUB_ARGS:-} 2>&1 | tee "$OUT/published_b$b.txt"
    [ -f "out/bench_published_b$b.json" ] && cp "out/bench_published_b$b.json" "$OUT/"
  done
  ;;
kernels)
  setup
  timeout 60 deno run -A --cached-only --unstable-webgpu tools/probe_gpu.ts 2>&1 | tee "$OUT/probe.log"
  for s in matmul local_attention; do
    rm -f out/bench.json
    timeout "${SUITE_T:-90}" deno run -A --cached-only --unstable-webgpu tools/bench.ts --only "$s" --quick 2>&1 |
      tee -a "$OUT/kernels.log"
    [ -f out/bench.json ] && deno eval "console.log(JSON.stringify({ suite: '$s', results: JSON.parse(Deno.readTextFileSync('out/bench.json')) }))" >> "$OUT/kernels.jsonl"
  done
  ;;
all)
  # One lease, every measurement, in order of priority. Each part is capped (seconds, env T_<PART>) and skippable
  # (PARTS="probe gemv ..."); DEADLINE (seconds from the start, default 520) caps every part so the whole script ends
  # in time and later parts are skipped rather than the call cut. Logs and JSON go to /tmp/devout/<part>.{log,json};
  # after each part they are packed into $OUT/results.tgz (only 8 files come back from a call), so a call cut short
  # still returns the parts it finished. Between the kernel benches and the published runs, tools/pick_variants.ts
  # names the fastest GEMV / GEMM / SR attention variants of this call (COGVIEW2_GEMV/GEMM/SR_ATTENTION, in
  # $W/picked.env), and the published runs take them. A summary is printed last.
  setup
  # PARTS=next: what sessions 9-10 built and could not time (no GPU lent), in priority order for one ~8-minute call:
  # the b1 decode step at 244 dispatches with session 10's host cuts (published_b1, host_dawn: µs per dispatch) against
  # 344 (coglm_b1_unfused); the tensor-core GEMM variants (gemm_tc), the real kernels vs the CPU twin incl. the K=2052
  # error line (sgmat_test), then, if that passed, the precise tensor cores in the b8 pipeline (published_b8_tc; 31.87 s
  # with the plain ones, 46.5 s without) and on the golden cases (conformance_tc); wgpu after the #unroll conversions
  # (published_b1_wgpu: 50 tokens/s before; the SR local attention with and without choices.ts unroll; the gemm/gemv
  # variants on wgpu). Parts run in this script's order whatever the order of PARTS.
  [ "${PARTS:-}" = next ] && PARTS="probe published_b1 host_dawn coglm_b1_unfused gemm_tc sgmat_test published_b8_tc conformance_tc published_b1_wgpu sr_attention_wgpu sr_attention_wgpu_rolled gemv_wgpu gemm_wgpu"
  W=/tmp/devout; rm -rf "$W"; mkdir -p "$W"
  t0=$(date +%s)
  # SMI_LOG=1: the card's SM clock, power and temperature every 0.5 s for the whole run ($W/smi.csv), to tell a
  # kernel's rate from the clock it ran at (isolated GEMMs vs the same GEMMs sustained inside a stage)
  if [ -n "${SMI_LOG:-}" ]; then
    nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu,utilization.gpu,clocks_throttle_reasons.active \
      --format=csv -lms 500 > "$W/smi.csv" 2>&1 &
  fi
  part() { # part NAME CAP CMD...: CMD under `timeout CAP` into $W/NAME.log; its bench JSON (if any) into $W/NAME.json
    local n=$1 cap=$2; shift 2
    case " ${PARTS:-probe gemv gemm sr_attention rows decode_attention published_b1 host_dawn host_wgpu profile_b1 coglm_b1_before published_b8 gemm_f16 gemm_tc gemm_tc_norobust sgmat_test published_b8_sgmat published_b8_tc conformance_tc conformance_tc_fast published_b8_tc_fast vqvae_wgpu vqvae_dawn published_b1_wgpu published_b1_wgpu_rolled sr_attention_wgpu sr_attention_wgpu_rolled gemv_wgpu gemm_wgpu kernels_dawn profile_b8 compare_e2e auto compare kernels} " in
    *" $n "*) ;; *) return 0 ;; esac
    local s left; s=$(date +%s); left=$(( ${DEADLINE:-520} - (s - t0) - 5 ))
    [ "$left" -lt "$cap" ] && cap=$left
    if [ "$cap" -lt 15 ]; then echo "$n skipped (deadline)" | tee -a "$W/summary.txt"; return 0; fi
    echo "== $n (cap ${cap}s, at +$((s - t0))s)"
    rm -f out/bench.json out/bench_published_b*.json out/bench_compare.json
    timeout "$cap" "$@" > "$W/$n.log" 2>&1
    local rc=$?
    for j in out/bench.json out/bench_published_b*.json out/bench_compare.json; do [ -f "$j" ] && cp "$j" "$W/$n.json"; done
    echo "$n rc=$rc $(( $(date +%s) - s ))s" | tee -a "$W/summary.txt"
    tail -n 3 "$W/$n.log" | cut -c1-200
    tar czf "$OUT/results.tgz" -C "$W" . && cp "$W/summary.txt" "$OUT/"
  }
  D="deno run -A --cached-only --unstable-webgpu"
  B="$D tools/bench.ts"
  # the second Dawn probe lists the experimental features too (e.g. a subgroup-matrix feature for tensor cores); the
  # third asks for f16 on NVIDIA: Dawn blocklists shader-f16 on NVIDIA's Vulkan drivers (crbug.com/42251215; the
  # H200 in session 6 had no shader-f16 through Dawn, wgpu had it) unless the adapter toggle
  # vulkan_enable_f16_on_nvidia is on, and the subgroup-matrix tiles (tensor cores) need f16
  part probe "${T_PROBE:-60}" bash -c "nvidia-smi 2>/dev/null; $D tools/probe_gpu.ts --gpu wgpu; $D tools/probe_gpu.ts --gpu dawn; \
    COGVIEW2_DAWN_TOGGLES=allow_unsafe_apis $D tools/probe_gpu.ts --gpu dawn; \
    COGVIEW2_DAWN_TOGGLES=vulkan_enable_f16_on_nvidia,allow_unsafe_apis $D tools/probe_gpu.ts --gpu dawn"
  part gemv "${T_GEMV:-90}" $B --gpu dawn --only gemv
  part gemm "${T_GEMM:-100}" $B --gpu dawn --only gemm
  part sr_attention "${T_SR_ATTENTION:-60}" $B --gpu dawn --only local_attention --quick
  # row reductions (layer norm / softmax) per variant, incl. decode rows [8, 3072]
  part rows "${T_ROWS:-45}" $B --gpu dawn --only choices --quick
  # the b1/b8 decode attention per key split S = 1..16 (flash-decoding), each checked vs the CPU twin: picks
  # COGVIEW2_ATTENTION_SPLIT for the published runs (choices.ts attentionSplit is an unmeasured heuristic)
  part decode_attention "${T_DECODE_ATTENTION:-30}" $B --gpu dawn --only decode_attention
  pick() {
    $D tools/pick_variants.ts --gemv "$W/gemv.json" --gemm "$W/gemm.json" --sr "$W/sr_attention.json" \
      --rows "$W/rows.json" --attn "$W/decode_attention.json" --m "$1"
  }
  pick 1 > "$W/picked_b1.env"; pick 8 > "$W/picked_b8.env"; cat "$W"/picked_b*.env
  # shellcheck disable=SC2086
  part published_b1 "${T_PUB1:-75}" bash -c ". $W/picked_b1.env; $B --gpu ${PUB_GPU:-dawn} --shape published --batch 1 ${PUB_ARGS:-}"
  # the host's recording time per dispatch of a CogLM decode step alone (48 layers x 128, the published dispatch
  # structure, the device idle while each step is recorded; min and median us per dispatch, submit per step apart):
  # compare with published_b1's "coglm host:" line (session 8: ~19.5 us per dispatch, recording + submit, Dawn)
  part host_dawn "${T_HOST:-30}" $B --gpu dawn --only host
  part host_wgpu "${T_HOST:-30}" $B --gpu wgpu --only host
  # one CogLM decode step at batch 1 by kernel and grid (dispatches per step and per layer, GPU µs; the whole 400
  # tokens so that attention's mean key count is the real run's), CogLM only
  # shellcheck disable=SC2086
  part profile_b1 "${T_PROFILE_B1:-60}" bash -c ". $W/picked_b1.env; $B --gpu ${PUB_GPU:-dawn} --shape published --batch 1 --stages coglm --profile ${PUB_ARGS:-}"
  # CogLM b1 with the GPU defaults before session 7 (64-wide row reductions and fused attention): compare with published_b1
  # shellcheck disable=SC2086
  part coglm_b1_before "${T_COGLM_B1_BEFORE:-40}" bash -c ". $W/picked_b1.env; COGVIEW2_ROW_REDUCE=workgroup COGVIEW2_ROW_REDUCE_DECODE=workgroup COGVIEW2_ATTENTION_WG=64 COGVIEW2_ATTENTION_SPLIT=1 $B --gpu ${PUB_GPU:-dawn} --shape published --batch 1 --stages coglm ${PUB_ARGS:-}"
  # CogLM b1 with the decode step's dispatch merges off (COGVIEW2_LN_PROLOGUE=0: the layer norms in dispatches of their
  # own; COGVIEW2_SAMPLER_FUSED=0: five sampler passes): 344 dispatches per step instead of 244; compare the tokens/s
  # and the "coglm host:" line with published_b1, the kernels' GPU µs with profile_b1 (not in the default PARTS: name
  # them, e.g. PARTS="probe gemv rows decode_attention published_b1 coglm_b1_unfused profile_b1 profile_b1_unfused")
  # shellcheck disable=SC2086
  part coglm_b1_unfused "${T_COGLM_B1_UNFUSED:-40}" bash -c ". $W/picked_b1.env; COGVIEW2_LN_PROLOGUE=0 COGVIEW2_SAMPLER_FUSED=0 $B --gpu ${PUB_GPU:-dawn} --shape published --batch 1 --stages coglm ${PUB_ARGS:-}"
  # shellcheck disable=SC2086
  part profile_b1_unfused "${T_PROFILE_B1:-60}" bash -c ". $W/picked_b1.env; COGVIEW2_LN_PROLOGUE=0 COGVIEW2_SAMPLER_FUSED=0 $B --gpu ${PUB_GPU:-dawn} --shape published --batch 1 --stages coglm --profile ${PUB_ARGS:-}"
  # shellcheck disable=SC2086
  part published_b8 "${T_PUB8:-130}" bash -c ". $W/picked_b8.env; $B --gpu ${PUB_GPU:-dawn} --shape published --batch 8 ${PUB_ARGS:-}"
  # the GEMM variants again with Dawn's f16 unblocked on NVIDIA and its experimental features listed (see the probe):
  # gemm_tiles_f16math runs only where the adapter then has shader-f16, the tensor-core gemm_sgmat* only where it
  # lists chromium-experimental-subgroup-matrix with an f16->f32 configuration (else gemm_variant_skipped with the
  # reason, or with the compiler's message if the WGSL is wrong); compare with the gemm part
  TC="vulkan_enable_f16_on_nvidia,allow_unsafe_apis"
  part gemm_f16 "${T_GEMM_F16:-100}" env COGVIEW2_DAWN_TOGGLES=$TC $B --gpu dawn --only gemm
  # the tensor-core variants alone (and gemm_tiles, the baseline): plain (A rounded to f16), *_precise (A split into
  # f16 hi + lo: what COGVIEW2_TENSOR_CORES=1 runs), gemm_sgmat_b64* (64x64 of C per subgroup; _db double-buffered);
  # then the same without Dawn's bounds checks (disable_robustness), to see whether they weigh on the staging
  part gemm_tc "${T_GEMM_TC:-70}" env COGVIEW2_DAWN_TOGGLES=$TC $B --gpu dawn --only gemm --variants sgmat
  part gemm_tc_norobust "${T_GEMM_TC:-70}" env COGVIEW2_DAWN_TOGGLES=$TC,disable_robustness $B --gpu dawn --only gemm \
    --variants sgmat
  # the tensor-core GEMM against the CPU twin (odd sizes, batch 2, full epilogue; ignored with the reason where it
  # cannot run), then, only if that passed, the published b8 run with it (short, like call4a/b: 40 tokens, 2 LoPAR rounds)
  part sgmat_test "${T_SGMAT_TEST:-60}" env COGVIEW2_GPU=dawn COGVIEW2_DAWN_TOGGLES=$TC \
    deno test -A --cached-only --no-check --unstable-webgpu tests/kernels/gemm_sgmat_test.ts
  if grep -qE "^gemm_sgmat\* \(tensor cores\) match the CPU twin.* \.\.\. ok" "$W/sgmat_test.log" 2>/dev/null; then
    # shellcheck disable=SC2086
    part published_b8_sgmat "${T_PUB8_SGMAT:-90}" bash -c ". $W/picked_b8.env; COGVIEW2_DAWN_TOGGLES=$TC COGVIEW2_GEMM=gemm_sgmat \
      $B --gpu dawn --shape published --batch 8 --tokens 40 --lopar-rounds 2 ${PUB_ARGS:-}"
    # the whole b8 pipeline as a user gets it with COGVIEW2_TENSOR_CORES=1 (the precise tensor-core GEMMs, A split
    # into f16 hi + lo; the table's kernels otherwise)
    # shellcheck disable=SC2086
    part published_b8_tc "${T_PUB8_TC:-90}" env COGVIEW2_TENSOR_CORES=1 $B --gpu dawn --shape published --batch 8 ${PUB_ARGS:-}
    # the golden CogLM and iterative-SR forwards on the tensor cores, precise (expected to pass: 3.1e-6 / 3.7e-6
    # hidden emulated on lavapipe) and plain (expected to fail by a hair: 2.15e-3 / 2.1e-3 vs atol 2e-3)
    part conformance_tc "${T_CONF_TC:-60}" env COGVIEW2_TENSOR_CORES=1 $D tools/conformance.ts .dn/fx --model .dn/model \
      --gpu dawn --kind coglm_forward,itersr_forward
    part conformance_tc_fast "${T_CONF_TC:-60}" env COGVIEW2_TENSOR_CORES=fast $D tools/conformance.ts .dn/fx \
      --model .dn/model --gpu dawn --kind coglm_forward,itersr_forward
    # the b8 pipeline with the plain tensor-core GEMMs (A rounded to f16; session 9's 31.87 s): compare with published_b8_tc
    # shellcheck disable=SC2086
    part published_b8_tc_fast "${T_PUB8_TC:-90}" env COGVIEW2_TENSOR_CORES=fast $B --gpu dawn --shape published --batch 8 ${PUB_ARGS:-}
  else echo "published_b8_sgmat, published_b8_tc, conformance_tc*, published_b8_tc_fast skipped (sgmat_test did not pass)" | tee -a "$W/summary.txt"; fi
  # the VQ-VAE alone (random 60×60 codes, 4 images), each dispatch timed, on both backends: session 6 measured it
  # 1.74 s per image on wgpu against 0.064 on Dawn at batch 8 (13.89 vs 0.51 s), cause unknown; the kernel table
  # says which kernel
  part vqvae_wgpu "${T_VQVAE_WGPU:-60}" $B --gpu wgpu --shape published --batch 4 --stages vqvae --profile
  part vqvae_dawn "${T_VQVAE_DAWN:-30}" $B --gpu dawn --shape published --batch 4 --stages vqvae --profile
  # wgpu with the variants picked on Dawn (the same WGSL; wgpu/gpu's table still names session 6's first GEMM and
  # GEMV): compare stage by stage with published_b1. wgpu has no subgroups: a gemm_sg_* pick is dropped (the GEMV
  # and row reductions fall back to their workgroup-memory reductions by themselves)
  # shellcheck disable=SC2086
  part published_b1_wgpu "${T_PUB1_WGPU:-60}" bash -c ". $W/picked_b1.env; case \"\${COGVIEW2_GEMM:-}\" in gemm_sg*) unset COGVIEW2_GEMM ;; esac; \
    $B --gpu wgpu --shape published --batch 1 ${PUB_ARGS:-}"
  # the same with the conditional #unroll loops rolled (choices.ts unroll; session 10: flash_attention's q/acc), to
  # tell what UNROLL buys on wgpu: compare the DSR/iterative SR lines with published_b1_wgpu
  # shellcheck disable=SC2086
  part published_b1_wgpu_rolled "${T_PUB1_WGPU:-60}" bash -c ". $W/picked_b1.env; case \"\${COGVIEW2_GEMM:-}\" in gemm_sg*) unset COGVIEW2_GEMM ;; esac; \
    COGVIEW2_UNROLL=0 $B --gpu wgpu --shape published --batch 1 ${PUB_ARGS:-}"
  # the SR local attention alone on wgpu (its per-query route, wgpu/gpu's schedule; session 10 unrolled its channel
  # loops where UNROLL is set) and the same rolled: compare with sr_attention (Dawn; DSR 11.65 s on wgpu vs 2.83 s)
  part sr_attention_wgpu "${T_SR_ATTENTION:-60}" $B --gpu wgpu --only local_attention --quick
  part sr_attention_wgpu_rolled "${T_SR_ATTENTION:-60}" env COGVIEW2_UNROLL=0 $B --gpu wgpu --only local_attention --quick
  # the GEMV and GEMM variants on wgpu (Deno's built-in WebGPU), each checked vs the CPU twin before timing: compare
  # with the gemv / gemm parts (Dawn). Session 8 measured the register-array kernels 14-56x slower on wgpu (naga's
  # loops, NVIDIA does not unroll them; session 9 copies them out with #unroll)
  part gemv_wgpu "${T_GEMV_WGPU:-90}" $B --gpu wgpu --only gemv
  part gemm_wgpu "${T_GEMM_WGPU:-100}" $B --gpu wgpu --only gemm
  part kernels_dawn "${T_KERNELS_DAWN:-45}" $B --gpu dawn --only matmul --quick
  # where the time goes per kernel (each dispatch its own timestamped pass: slower, so CogLM shortened to 40 tokens)
  # shellcheck disable=SC2086
  part profile_b8 "${T_PROFILE:-120}" bash -c ". $W/picked_b8.env; $B --gpu ${PUB_GPU:-dawn} --shape published --batch 8 --tokens 40 --profile ${PUB_ARGS:-}"
  # e2e on the built-in demo model (made there), whole pipeline and first stage, batch 1 and 4, both backends
  part compare_e2e "${T_COMPARE_E2E:-120}" $B --compare-backends --only e2e --model demo
  # auto's measurement of both backends, and its choice, on this machine
  part auto "${T_AUTO:-90}" $D tools/probe_gpu.ts --gpu auto --retune
  # the tiny fixture converted (.dn/model, no VQ-VAE file: size) for coglm/sr
  part compare "${T_COMPARE:-60}" $B --compare-backends --only matmul,coglm,sr --quick --model .dn/model
  part kernels "${T_KERNELS:-45}" $B --gpu wgpu --only matmul --quick
  echo "== summary (+$(( $(date +%s) - t0 ))s)"
  cat "$W/summary.txt" "$W"/picked_b*.env
  grep -hE "^gpu:|auto →|coglm decode step|queue_round_trip_ms|gemv_step_best_ms|gemm_variant_best_gflops|decode_attention_best_split|tokens/s|^(coglm|dsr|itersr|vqvae) " \
    "$W"/*.log 2>/dev/null | cut -c1-170 | head -n 70
  ;;
*) echo "usage: bash tools/device_bench.sh prepare|run|published|kernels|all" >&2; exit 2 ;;
esac
