// Pass 3's draw, shared by cluster_token and cluster_fused (sampling.wgsl; included by whichever is compiled):
// token ~ softmax(x / T2) over cluster cl's tokens (CT[tok0 + CT[cl] ..] of the ascending token lists), each
// invocation a contiguous chunk of them, pick_chunk choosing the chunk with the row's second random number; the
// chunk's invocation walks it and writes Ids for row r. Leaves the max in sh_f[2] and the total in sh_f[3]
// (pick_chunk). Call it from uniform control flow (barriers inside).
fn draw_in_cluster(r: u32, li: u32, cl: u32, base: u32, tok0: u32, T: f32, T2: f32) {
  let o0 = CT[cl];
  let n = CT[cl + 1u] - o0;
  let chunk = (n + WG - 1u) / WG;
  let q0 = min(n, li * chunk);
  let q1 = min(n, q0 + chunk);
  var a = vec2<f32>(-3.402823e38, 0.0);
  for (var q = q0; q < q1; q++) { a = ms_push(a, (L[base + CT[tok0 + o0 + q]] / T) / T2); }
  red_f[li] = a.x;
  red_g[li] = a.y;
  pick_chunk(li, to_uniform(draws(r).y));
  let m2 = sh_f[2];
  if (li == sh_u[0]) {
    let rem = sh_f[0];
    var cum = 0.0;
    var tok = NONE;
    var last = NONE;
    for (var q = q0; q < q1; q++) {
      let id = CT[tok0 + o0 + q];
      let w = exp((L[base + id] / T) / T2 - m2);
      if (w > 0.0) {
        last = id;
        cum += w;
        if (cum > rem) { tok = id; break; }
      }
    }
    if (tok == NONE) { tok = last; }
    Ids[P.out_offset + r * P.out_stride] = i32(tok);
  }
}
