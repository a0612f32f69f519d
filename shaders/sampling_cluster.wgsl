// Pass 4's draw, shared by cluster_draw and cluster_fused (sampling.wgsl; included by whichever is compiled): the
// rank of the cluster drawn among row r's top k (Top[tb .. tb + K), masses `tot` in all) in proportion to its mass
// with the row's first random number, or P.force_rank; a zero-mass cluster is never drawn unless all are.
fn draw_cluster_rank(r: u32, tb: u32, K: u32, tot: f32) -> u32 {
  if (P.force_rank != NONE) { return min(P.force_rank, K - 1u); }
  let goal = to_uniform(draws(r).x) * tot;
  var cum = 0.0;
  var pick = NONE;
  var last = 0u;
  for (var j = 0u; j < K; j++) {
    let w = Top[tb + j].y;
    if (w > 0.0) {
      last = j;
      if (cum + w > goal) { pick = j; break; }
    }
    cum += w;
  }
  return select(pick, last, pick == NONE);
}
