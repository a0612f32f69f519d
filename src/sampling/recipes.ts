// Style recipes of CogView2: `get_recipe(name)` of cogview2_text2image.py, value for value, in its order.
// Not a sampler: these are plain parameters; the samplers of src/models/sampling.ts consume them.
//
// Usage: `const r = getRecipe("mainbody"); const text = r.template.replace("{}", prompt);`
//   stage 1 (CogLM):   sampleCoglm(ctx, logits, { temperature: r.temperature, topk: r.topk, topkCluster: r.top_k_cluster, ... })
//   stage 2 (DSR):     sampleDsr(ctx, logits, { topk: r.topk_dsr, temperature2: r.temp_cluster_dsr, ... })
//   stage 3 (LoPAR):   sampleTopk(ctx, logits, { topk: LOPAR_TOPKS[round], temperature: 1, ... }) (src/geometry/sr.ts)
// Quirks kept from the original: temp_all_dsr / temp_all_itersr / topk_itersr are carried but never used by the
// samplers (DSR and iterative SR are called with temperature 1; LoPAR overrides top-k per round).

/** The 10 style names, in the order of the original's `--style` choices. */
export const STYLES = [
  "none",
  "mainbody",
  "photo",
  "flat",
  "comics",
  "oil",
  "sketch",
  "isometric",
  "chinese",
  "watercolor",
] as const;

export type Style = typeof STYLES[number];

/** The original's default `--style`. */
export const DEFAULT_STYLE: Style = "mainbody";

export interface Recipe {
  /** The style name. */
  style: Style;
  /** Text template; "{}" is replaced by the prompt; ends with `<start_of_image>`. Same as `query_template`. */
  template: string;
  /** CogLM sampling temperature (= temp_all_gen). */
  temperature: number;
  /** CogLM: number of top clusters kept (= topk_gen). */
  topk: number;
  /** CogLM: the final softmax divisor inside the chosen cluster (`top_k_cluster` of CoglmStrategy = temp_cluster_gen). */
  top_k_cluster: number;

  // ---- the original dict, key for key
  attn_plus: number;
  temp_all_gen: number;
  topk_gen: number;
  temp_cluster_gen: number;
  /** Passed to the DSR strategy but unused (it is called with temperature 1). */
  temp_all_dsr: number;
  /** DSR: number of top clusters kept. */
  topk_dsr: number;
  /** DSR: `temperature2`, the softmax divisor inside the chosen cluster. */
  temp_cluster_dsr: number;
  /** Passed to the iterative-SR strategy but unused (called with temperature 1). */
  temp_all_itersr: number;
  /** Initial top-k of the iterative-SR strategy; LoPAR overrides it every round (ITERSR_TOPKS). */
  topk_itersr: number;
  query_template: string;
}

/** `get_recipe(name)` of cogview2_text2image.py. Throws on an unknown style. */
export function getRecipe(style: string = DEFAULT_STYLE): Recipe {
  const r = {
    attn_plus: 1.4,
    temp_all_gen: 1.15,
    topk_gen: 16,
    temp_cluster_gen: 1.0,
    temp_all_dsr: 1.5,
    topk_dsr: 100,
    temp_cluster_dsr: 0.89,
    temp_all_itersr: 1.3,
    topk_itersr: 16,
    query_template: "{}<start_of_image>",
  };
  switch (style) {
    case "none":
      break;
    case "mainbody":
      r.query_template = "{} 高清摄影 隔绝<start_of_image>";
      break;
    case "photo":
      r.query_template = "{} 高清摄影<start_of_image>";
      break;
    case "flat":
      r.query_template = "{} 平面风格<start_of_image>";
      r.temp_all_gen = 1.1;
      r.topk_dsr = 5;
      r.temp_cluster_dsr = 0.4;
      r.temp_all_itersr = 1;
      r.topk_itersr = 5;
      break;
    case "comics":
      r.query_template = "{} 漫画 隔绝<start_of_image>";
      r.topk_dsr = 5;
      r.temp_cluster_dsr = 0.4;
      r.temp_all_gen = 1.1;
      r.temp_all_itersr = 1;
      r.topk_itersr = 5;
      break;
    case "oil":
      r.query_template = "{} 油画风格<start_of_image>";
      break;
    case "sketch":
      r.query_template = "{} 素描风格<start_of_image>";
      r.temp_all_gen = 1.1;
      break;
    case "isometric":
      r.query_template = "{} 等距矢量图<start_of_image>";
      r.temp_all_gen = 1.1;
      break;
    case "chinese":
      r.query_template = "{} 水墨国画<start_of_image>";
      r.temp_all_gen = 1.12;
      break;
    case "watercolor":
      r.query_template = "{} 水彩画风格<start_of_image>";
      break;
    default:
      throw new Error(`Unknown style '${style}'; styles: ${STYLES.join(", ")}`);
  }
  return {
    style: style as Style,
    template: r.query_template,
    temperature: r.temp_all_gen,
    topk: r.topk_gen,
    top_k_cluster: r.temp_cluster_gen,
    ...r,
  };
}
