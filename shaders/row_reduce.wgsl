// Workgroup reductions for row kernels (one workgroup per row): every invocation passes its partial, all get the
// total. Shared by layernorm.wgsl and softmax.wgsl; not a general reduction library. Three variants (the launcher
// picks one per backend, src/kernels/choices.ts):
//   default  64 invocations, a tree in workgroup memory;
//   NARROW   8 invocations, the same tree (CPU adapters: one SIMD group, where a 64-wide workgroup's barriers are
//            coroutine switches between its 8 SIMD groups);
//   SUBGROUPS the workgroup is one subgroup of SG invocations (SG = the adapter's fixed subgroup size) and the
//            reductions are subgroupMax / subgroupAdd: no workgroup memory, no barriers (the including shader starts
//            with `enable subgroups;`);
//   WIDE     WG invocations, 256 or 1024 (GPUs: a row of a few thousand values is 12 / 3 loads per invocation
//            instead of 48, where a decode step's few rows leave the rest of the chip idle and each pass is load
//            latency); with SUBGROUPS, subgroupAdd / subgroupMax in each subgroup, then the WG / SG partials through
//            workgroup memory (two barriers; invocations are taken to fill subgroups in index order), else the tree.
//            (layernorm.wgsl's REGS keeps its row in registers over WIDE's reductions.)

#if WIDE
const WG: u32 = {{WG}}u;
#if SUBGROUPS
const SG: u32 = {{SG}}u;
var<workgroup> red: array<f32, {{WG}} / {{SG}}>;

fn reduce_max(li: u32, v: f32) -> f32 {
  let s = subgroupMax(v);
  if (li % SG == 0u) { red[li / SG] = s; }
  workgroupBarrier();
  var t = red[0];
  for (var i = 1u; i < WG / SG; i++) { t = max(t, red[i]); }
  workgroupBarrier();
  return t;
}

fn reduce_sum(li: u32, v: f32) -> f32 {
  let s = subgroupAdd(v);
  if (li % SG == 0u) { red[li / SG] = s; }
  workgroupBarrier();
  var t = 0.0;
  for (var i = 0u; i < WG / SG; i++) { t += red[i]; }
  workgroupBarrier();
  return t;
}
#endif
#elif SUBGROUPS
const WG: u32 = {{SG}}u;

fn reduce_max(li: u32, v: f32) -> f32 {
  return subgroupMax(v);
}

fn reduce_sum(li: u32, v: f32) -> f32 {
  return subgroupAdd(v);
}
#endif
#if !SUBGROUPS
#if NARROW
const WG: u32 = 8u;
#elif !WIDE
const WG: u32 = 64u;
#endif
var<workgroup> red: array<f32, WG>;

fn reduce_max(li: u32, v: f32) -> f32 {
  red[li] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (li < s) { red[li] = max(red[li], red[li + s]); }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

fn reduce_sum(li: u32, v: f32) -> f32 {
  red[li] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (li < s) { red[li] += red[li + s]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}
#endif
