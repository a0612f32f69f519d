// Graceful shutdown on SIGINT/SIGTERM: stop accepting, let the running job finish (or cancel it), exit 0.
// Not a process supervisor: a second signal exits at once with status 130.

import type { RunningServer } from "./app.ts";
import { shutdownPlan } from "./jobs.ts";

export function exitOnSignals(
  server: RunningServer,
  options: { graceMs: number; log: (msg: string) => void },
): void {
  let stopping = false;
  const onSignal = (sig: Deno.Signal) => {
    if (stopping) {
      options.log(`${sig} again: exiting now`);
      Deno.exit(130);
    }
    stopping = true;
    const running = server.app.queue.running, plan = shutdownPlan(options.graceMs);
    options.log(
      `${sig}: shutting down (no new jobs${
        running
          ? `; job ${running.id} gets ${plan.cancelAtMs / 1000} s to finish, then is cancelled; exit within ${
            options.graceMs / 1000
          } s`
          : ""
      })`,
    );
    server.shutdown(options.graceMs).then(
      () => {
        options.log("stopped");
        Deno.exit(0);
      },
      (e) => {
        options.log(`shutdown failed: ${e instanceof Error ? e.message : e}`);
        Deno.exit(1);
      },
    );
  };
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  for (const s of signals) Deno.addSignalListener(s, () => onSignal(s));
}
