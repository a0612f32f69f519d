// Prometheus text-format metrics: counters, gauges and summaries (sum + count) with labels, in memory.
// Not a client library: no histograms with buckets, no push gateway, no registry of collectors.

type Labels = Record<string, string>;

interface Series {
  kind: "counter" | "gauge" | "summary";
  help: string;
  values: Map<string, { labels: Labels; value: number; count: number }>;
}

const HELP: Record<string, [Series["kind"], string]> = {
  cogview2_jobs_submitted_total: ["counter", "Jobs accepted into the queue"],
  cogview2_jobs_total: ["counter", "Jobs finished, by final state"],
  cogview2_jobs_rejected_total: ["counter", "Jobs refused, by reason"],
  cogview2_queue_depth: ["gauge", "Jobs waiting in the queue"],
  cogview2_jobs_running: ["gauge", "Jobs running (0 or 1)"],
  cogview2_jobs_stored: ["gauge", "Jobs held in the store (queued, running and finished)"],
  cogview2_job_seconds: ["summary", "Wall time of finished jobs"],
  cogview2_stage_seconds: ["summary", "Wall time per pipeline stage"],
  cogview2_images_generated_total: ["counter", "Images produced"],
  cogview2_images_served_total: ["counter", "Image downloads served"],
  cogview2_http_requests_total: ["counter", "HTTP requests by status code"],
  cogview2_process_heap_bytes: ["gauge", "Deno heap used"],
  cogview2_process_rss_bytes: ["gauge", "Resident set size"],
};

function key(labels: Labels): string {
  return Object.keys(labels).sort().map((k) => `${k}="${labels[k]}"`).join(",");
}

function escape(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

export class Metrics {
  readonly #series = new Map<string, Series>();

  #get(name: string): Series {
    let s = this.#series.get(name);
    if (!s) {
      const [kind, help] = HELP[name] ?? ["gauge", name];
      s = { kind, help, values: new Map() };
      this.#series.set(name, s);
    }
    return s;
  }

  inc(name: string, labels: Labels = {}, by = 1): void {
    const s = this.#get(name), k = key(labels);
    const v = s.values.get(k) ?? { labels, value: 0, count: 0 };
    v.value += by;
    s.values.set(k, v);
  }

  set(name: string, labels: Labels, value: number): void {
    this.#get(name).values.set(key(labels), { labels, value, count: 0 });
  }

  observe(name: string, labels: Labels, value: number): void {
    const s = this.#get(name), k = key(labels);
    const v = s.values.get(k) ?? { labels, value: 0, count: 0 };
    v.value += value;
    v.count += 1;
    s.values.set(k, v);
  }

  /** Current value of a counter or gauge (sum for a summary); 0 when never set. */
  value(name: string, labels: Labels = {}): number {
    return this.#series.get(name)?.values.get(key(labels))?.value ?? 0;
  }

  /** The exposition text (version 0.0.4). */
  render(): string {
    const mem = Deno.memoryUsage();
    this.set("cogview2_process_heap_bytes", {}, mem.heapUsed);
    this.set("cogview2_process_rss_bytes", {}, mem.rss);
    const lines: string[] = [];
    for (const [name, s] of [...this.#series].sort(([a], [b]) => a.localeCompare(b))) {
      lines.push(`# HELP ${name} ${s.help}`, `# TYPE ${name} ${s.kind}`);
      for (const { labels, value, count } of s.values.values()) {
        const l = Object.entries(labels).map(([k, v]) => `${k}="${escape(v)}"`).join(",");
        const braces = l ? `{${l}}` : "";
        if (s.kind === "summary") {
          lines.push(`${name}_sum${braces} ${value}`, `${name}_count${braces} ${count}`);
        } else lines.push(`${name}${braces} ${value}`);
      }
    }
    return lines.join("\n") + "\n";
  }
}
