// The one terminal progress line of the command-line tools (generate in main.ts, convert): a bar, a percentage and a
// label, redrawn in place with `\r` at most every 50 ms; plain lines when stderr is not a terminal. Not a logger.

export class TerminalBar {
  readonly #tty: boolean;
  readonly #enc = new TextEncoder();
  #lastStage = "";
  #lastDraw = 0;

  constructor(tty = Deno.stderr.isTerminal()) {
    this.#tty = tty;
  }

  update(progress: number, label: string, stage: string): void {
    if (!this.#tty) {
      if (stage !== this.#lastStage) this.#write(`${label}\n`);
      this.#lastStage = stage;
      return;
    }
    const now = performance.now();
    if (now - this.#lastDraw < 50 && progress < 1) return;
    this.#lastDraw = now;
    const width = 30, filled = Math.round(progress * width);
    const bar = "█".repeat(filled) + "░".repeat(width - filled);
    this.#write(`\r${bar} ${(progress * 100).toFixed(0).padStart(3)}% ${label}`.padEnd(90).slice(0, 120));
  }

  line(text: string): void {
    this.#write(this.#tty ? `\r${text.padEnd(90)}\n` : `${text}\n`);
  }

  #write(s: string): void {
    Deno.stderr.writeSync(this.#enc.encode(s));
  }
}
