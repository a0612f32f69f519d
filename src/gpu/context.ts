// GpuContext: buffer pool, pipeline cache, bind-group cache and one command encoder per model call.
// Kernels are recorded with `dispatch` and submitted together by `flush` (or a readback); not a graph compiler.

import { type Gpu } from "./device.ts";
import { type Defines, preprocess } from "./shader_source.ts";
import { type DType, dtypeBytes, numel, type RowChunkedTensor, storageBytes, Tensor } from "./tensor.ts";
import { f16BitsToF32, f32ToF16Bits } from "./f16.ts";

/**
 * Access of a kernel's buffers (binding 1.. in order; binding 0 is the params uniform): read-only storage, storage,
 * or "uniform": a window of a buffer bound as a uniform with a dynamic offset given per dispatch (CPU adapters read
 * uniform buffers much faster than storage, src/kernels/matmul_windows.ts).
 */
export type Access = "read" | "write" | "uniform";

export interface KernelSpec {
  /** Name used in errors and timing tables. */
  name: string;
  /** File under shaders/ (or `code`). */
  shader?: string;
  /** Generated WGSL instead of a shader file (compiled once per distinct text). */
  code?: string;
  entry?: string;
  defines?: Defines;
  bindings: readonly Access[];
}

export interface Kernel {
  readonly key: string;
  /** Unique per compiled kernel (hashed into bind-group keys). */
  readonly id: number;
  readonly name: string;
  readonly pipeline: GPUComputePipeline;
  readonly layout: GPUBindGroupLayout;
  readonly bindings: readonly Access[];
  /**
   * No "uniform" binding: the params uniform (binding 0) is bound at its slot in the bind group itself (no dynamic
   * offset; see GpuContext.dispatch). Else binding 0 takes a dynamic offset like the uniform windows.
   */
  readonly staticParams: boolean;
}

/** A float parameter (all other params are u32/i32 integers). */
export class F32 {
  constructor(readonly value: number) {}
}
export const f32 = (v: number): F32 => new F32(v);
export type Param = number | F32;

/** A byte range of a buffer to bind; tensors bind their own range. */
export interface BufferRange {
  buffer: GPUBuffer;
  offset: number;
  size: number;
}
export type Bindable = Tensor | BufferRange;

const PARAM_STRIDE = 256; // minUniformBufferOffsetAlignment upper bound
const PARAM_SLOTS = 2048;
// UNIFORM too: the CPU matmul schedules bind 64 KiB windows of pooled buffers as uniform (src/kernels/matmul_windows.ts).
const USAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_SRC |
  GPUBufferUsage.COPY_DST;

let nextBufferId = 1;
const bufferIds = new WeakMap<GPUBuffer, number>();
function bufferId(b: GPUBuffer): number {
  let id = bufferIds.get(b);
  if (id === undefined) bufferIds.set(b, id = nextBufferId++);
  return id;
}

/**
 * A cached bind group: the kernel and its bindings' buffers (by identity), byte offsets and sizes, compared exactly
 * on lookup; `next`: the next entry whose key hashes alike.
 */
interface CachedBindGroup {
  kernel: Kernel;
  /** The params slot bound at binding 0 (Kernel.staticParams), else -1 (a dynamic offset places it). */
  slot: number;
  bufs: GPUBuffer[];
  offs: number[];
  sizes: number[];
  bg: GPUBindGroup;
  next: CachedBindGroup | undefined;
}

/** Size class for pooling: multiples of 256 B up to 64 KiB, then steps of 1/8 of the power of two. */
function sizeClass(bytes: number): number {
  if (bytes <= 65536) return Math.max(256, Math.ceil(bytes / 256) * 256);
  const p = 2 ** Math.floor(Math.log2(bytes));
  const step = p / 8;
  return Math.ceil(bytes / step) * step;
}

export interface KernelTiming {
  name: string;
  /** With `startProfile({ byGrid: true })`: the workgroup grid "x×y×z" these dispatches ran (one entry per grid). */
  grid?: string;
  /** The phase (GpuContext.profilePhase) the dispatches were recorded in; absent: none was set. */
  phase?: string;
  dispatches: number;
  ms: number;
}

/** A point in the queue (GpuContext.fence). */
export interface Fence {
  /** Resolves when the GPU has finished the work submitted before the fence; counts one host sync. */
  wait(): Promise<void>;
}

export class GpuContext {
  readonly device: GPUDevice;
  readonly #kernels = new Map<string, Kernel>();
  /** Bind groups by a hash of their key (GpuContext.#bindGroup), colliding entries chained. */
  readonly #bindGroups = new Map<number, CachedBindGroup>();
  /** Bind groups in #bindGroups (cleared past 20000). */
  #bindGroupCount = 0;
  /** Per dispatch scratch (reused, so a dispatch allocates nothing): the bindings' buffers, offsets and sizes. */
  readonly #bufs: GPUBuffer[] = [];
  readonly #offs: number[] = [];
  readonly #sizes: number[] = [];
  /** The dispatch's dynamic offsets: params slot, then one per "uniform" binding. */
  #dyn = new Uint32Array(16);
  readonly #free = new Map<number, GPUBuffer[]>();
  readonly #paramBuffer: GPUBuffer;
  readonly #paramStaging = new ArrayBuffer(PARAM_STRIDE * PARAM_SLOTS);
  // Views of #paramStaging (little-endian like the GPU: every platform Deno runs on is).
  readonly #paramU32 = new Uint32Array(this.#paramStaging);
  readonly #paramI32 = new Int32Array(this.#paramStaging);
  readonly #paramF32 = new Float32Array(this.#paramStaging);
  #paramCount = 0;
  #encoder: GPUCommandEncoder | null = null;
  #pass: GPUComputePassEncoder | null = null;
  /** The pipeline last set in #pass (null: none yet); a dispatch of the same kernel does not set it again. */
  #passPipeline: GPUComputePipeline | null = null;
  #uncaptured: string | null = null;
  /** Bytes currently allocated from the device by the pool (live + free). */
  allocatedBytes = 0;
  /** High-water mark of `allocatedBytes`. */
  peakBytes = 0;
  /**
   * Counts for benchmarks and tests: submits, dispatches, readbacks and host syncs (every awaited
   * `onSubmittedWorkDone` or `mapAsync`: `sync`, readbacks, `Fence.wait`; nothing else in the project awaits the GPU),
   * pipelines created and the wall milliseconds spent creating them (shader module + compute pipeline: where both
   * backends compile; the benchmarks report it apart from steady-state time), and bind groups created (a recording
   * that reuses its buffers creates none: the cache in #bindGroup hits), and the wall milliseconds spent in flush()
   * (ending the pass, writing the params, finishing and submitting the command buffer: the host's submit cost, apart
   * from recording the dispatches).
   */
  stats = {
    submits: 0,
    dispatches: 0,
    readbacks: 0,
    hostSyncs: 0,
    pipelines: 0,
    compileMs: 0,
    bindGroups: 0,
    submitMs: 0,
  };
  #profile:
    | {
      querySet: GPUQuerySet;
      resolve: GPUBuffer;
      names: { name: string; grid?: string; phase?: string }[];
      totals: Map<string, KernelTiming>;
      perDispatch: boolean;
      byGrid: boolean;
      phase?: string;
    }
    | null = null;

  /**
   * A second context on the same device whose kernels take the choices of a GPU adapter (choices.ts "*\/gpu":
   * gemmTiles, gemvRows, ...) even on a CPU adapter: `--gpu-schedules` in the tools, and tests of the GPU route on
   * lavapipe. Times measured through it are this adapter's, not a GPU's.
   */
  withGpuSchedules(): GpuContext {
    return new GpuContext({ ...this.gpu, isFallback: false });
  }

  constructor(readonly gpu: Gpu) {
    this.device = gpu.device;
    this.#paramBuffer = this.device.createBuffer({
      label: "params",
      size: PARAM_STRIDE * PARAM_SLOTS,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    this.device.addEventListener("uncapturederror", (ev) => {
      const e = (ev as GPUUncapturedErrorEvent).error;
      this.#uncaptured ??= e.message;
    });
  }

  get maxBinding(): number {
    return this.gpu.limits.maxStorageBufferBindingSize;
  }

  /**
   * A view of elements [start, end) of a tensor that starts on the adapter's storage offset alignment, for
   * binding part of a tensor larger than the max storage binding: the view begins up to one alignment earlier, and
   * `off` is where element `start` lies in it.
   */
  alignedView(t: Tensor, start: number, end: number): { t: Tensor; off: number } {
    const eb = dtypeBytes(t.dtype);
    if (start < 0 || end > t.size || end <= start) {
      throw new Error(`alignedView: elements [${start}, ${end}) outside tensor [${t.shape}]`);
    }
    const align = this.gpu.limits.minStorageBufferOffsetAlignment;
    const byte = t.byteOffset + start * eb, base = Math.floor(byte / align) * align;
    const off = (byte - base) / eb;
    return { t: t.view([off + end - start], base), off };
  }

  /**
   * A `bytes`-long window at the start of a tensor's buffer, for a "uniform" binding: the dispatch's dynamic offset
   * (absolute in the buffer) places it.
   */
  uniformWindow(t: Tensor, bytes: number): BufferRange {
    if (t.released) throw new Error(`uniform window of tensor ${t.id} used after release`);
    return { buffer: t.buffer, offset: 0, size: bytes };
  }

  // ---------------------------------------------------------------- kernels

  /** The compiled pipeline for a spec; compiled once per (shader, entry, defines) and cached. */
  kernel(spec: KernelSpec): Kernel {
    if ((spec.shader === undefined) === (spec.code === undefined)) {
      throw new Error(`Kernel ${spec.name}: give exactly one of shader and code`);
    }
    const key = `${spec.shader ?? spec.code}:${spec.entry ?? "main"}:${
      JSON.stringify(spec.defines ?? {})
    }:${spec.bindings.join()}`;
    let k = this.#kernels.get(key);
    if (k) return k;
    const code = spec.code ?? preprocess(spec.shader!, spec.defines ?? {});
    const t0 = performance.now();
    this.device.pushErrorScope("validation");
    const module = this.device.createShaderModule({ label: spec.name, code });
    const staticParams = !spec.bindings.includes("uniform");
    const entries: GPUBindGroupLayoutEntry[] = [
      {
        binding: 0,
        visibility: GPUShaderStage.COMPUTE,
        buffer: { type: "uniform", hasDynamicOffset: !staticParams },
      },
      ...spec.bindings.map((a, i) => ({
        binding: i + 1,
        visibility: GPUShaderStage.COMPUTE,
        buffer: a === "uniform"
          ? { type: "uniform" as const, hasDynamicOffset: true }
          : { type: a === "read" ? "read-only-storage" as const : "storage" as const },
      })),
    ];
    const layout = this.device.createBindGroupLayout({ label: spec.name, entries });
    const pipeline = this.device.createComputePipeline({
      label: spec.name,
      layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module, entryPoint: spec.entry ?? "main" },
    });
    this.stats.pipelines++;
    this.stats.compileMs += performance.now() - t0;
    // Compilation errors surface asynchronously: they are recorded here and thrown by the next sync().
    const scope = this.device.popErrorScope();
    this.#pendingScopes.push((async () => {
      const err = await scope;
      if (!err) return;
      const info = await module.getCompilationInfo();
      const lines = info.messages.filter((m) => m.type === "error")
        .map((m) => `  line ${m.lineNum}:${m.linePos}: ${m.message}`).join("\n");
      this.#compileErrors.push(
        `Kernel ${spec.name} (${spec.shader ? "shaders/" + spec.shader : "generated WGSL"}, defines ${
          JSON.stringify(spec.defines ?? {})
        }) ` +
          `failed to compile: ${err.message}${lines ? "\n" + lines : ""}`,
      );
    })());
    k = {
      key,
      id: this.#kernels.size + 1,
      name: spec.name,
      pipeline,
      layout,
      bindings: spec.bindings,
      staticParams,
    };
    this.#kernels.set(key, k);
    return k;
  }
  #pendingScopes: Promise<void>[] = [];
  #compileErrors: string[] = [];

  /**
   * Records one dispatch of `kernel` into the current batch. Params are packed as 32-bit words
   * (numbers as u32/i32, `f32(x)` as float) into a slot of the params arena. `offsets`: one dynamic byte offset per
   * "uniform" binding, in binding order (each a multiple of minUniformBufferOffsetAlignment).
   *
   * Kernels without "uniform" bindings (all the GPU schedules) bind their params slot in the bind group itself, keyed
   * by the slot: a recording that repeats (a decode step: the same dispatches from slot 0 after each flush) hits the
   * cache every time, and setBindGroup takes no dynamic offsets (Dawn: ~1 µs less host time per dispatch of a CogLM
   * decode step, `bench --only host`). A one-off recording makes a bind group per slot instead of per distinct
   * bindings (the same scratch buffers in every layer of a forward).
   */
  dispatch(
    kernel: Kernel,
    params: readonly Param[],
    buffers: readonly Bindable[],
    workgroups: readonly number[],
    offsets: readonly number[] = [],
  ): void {
    const nb = kernel.bindings.length;
    if (buffers.length !== nb) {
      throw new Error(`Kernel ${kernel.name}: expected ${nb} buffers, got ${buffers.length}`);
    }
    if (params.length * 4 > PARAM_STRIDE) throw new Error(`Kernel ${kernel.name}: too many params`);
    const maxWg = this.gpu.limits.maxComputeWorkgroupsPerDimension;
    const x = workgroups[0], y = workgroups[1] ?? 1, z = workgroups[2] ?? 1;
    if (x > maxWg || y > maxWg || z > maxWg) {
      throw new Error(
        `Kernel ${kernel.name}: workgroup count [${x},${y},${z}] exceeds ${maxWg} per dimension`,
      );
    }
    if (x === 0 || y === 0 || z === 0) return;
    // Bindings first: an error leaves the params arena as it was.
    const bufs = this.#bufs, offs = this.#offs, sizes = this.#sizes;
    if (this.#dyn.length <= nb) this.#dyn = new Uint32Array(nb + 1);
    const dyn = this.#dyn;
    let u = 0;
    for (let i = 0; i < nb; i++) {
      const b = buffers[i];
      let buffer: GPUBuffer, offset: number, size: number;
      if (b instanceof Tensor) {
        if (b.released) throw new Error(`Kernel ${kernel.name}: tensor ${b.id} used after release`);
        buffer = b.buffer, offset = b.byteOffset, size = Math.max(4, b.byteLength);
      } else {
        buffer = b.buffer, offset = b.offset, size = b.size;
      }
      if (kernel.bindings[i] === "uniform") {
        const limits = this.gpu.limits;
        if (size > limits.maxUniformBufferBindingSize) {
          throw new Error(
            `Kernel ${kernel.name}: a ${size}-byte uniform window exceeds this adapter's max uniform binding ` +
              `(${limits.maxUniformBufferBindingSize} bytes)`,
          );
        }
        const off = offsets[u++];
        if (
          off === undefined || off % limits.minUniformBufferOffsetAlignment ||
          offset + off + size > buffer.size
        ) {
          throw new Error(
            `Kernel ${kernel.name}: uniform binding ${i + 1} needs a dynamic offset aligned to ` +
              `${limits.minUniformBufferOffsetAlignment} with the window inside the buffer, got ${off}`,
          );
        }
        dyn[u] = off;
      } else if (size > this.maxBinding) {
        throw new Error(
          `Kernel ${kernel.name}: a ${size}-byte binding exceeds this adapter's max storage binding ` +
            `(${this.maxBinding} bytes); split the tensor (RowChunkedTensor)`,
        );
      }
      bufs[i] = buffer, offs[i] = offset, sizes[i] = size;
    }
    if (u !== offsets.length) {
      throw new Error(`Kernel ${kernel.name}: ${offsets.length} dynamic offsets for ${u} uniform bindings`);
    }
    if (this.#paramCount === PARAM_SLOTS) this.flush();
    const slot = this.#paramCount++;
    const bg = this.#bindGroup(kernel, kernel.staticParams ? slot : -1);
    const base = slot * (PARAM_STRIDE / 4);
    for (let i = 0; i < params.length; i++) {
      const p = params[i];
      if (p instanceof F32) this.#paramF32[base + i] = p.value;
      else if (p < 0) this.#paramI32[base + i] = p;
      else this.#paramU32[base + i] = p;
    }
    const pass = this.#computePass(kernel.name, x, y, z);
    if (this.#passPipeline !== kernel.pipeline) {
      pass.setPipeline(kernel.pipeline);
      this.#passPipeline = kernel.pipeline;
    }
    if (kernel.staticParams) pass.setBindGroup(0, bg);
    else {
      dyn[0] = slot * PARAM_STRIDE;
      pass.setBindGroup(0, bg, dyn, 0, u + 1);
    }
    pass.dispatchWorkgroups(x, y, z);
    this.stats.dispatches++;
    if (this.#profile?.perDispatch) this.#endProfiledPass();
  }

  /**
   * The cached bind group of `kernel` over the bindings in #bufs/#offs/#sizes with params slot `slot` at binding 0
   * (-1: offset 0, placed by a dynamic offset), created on a miss: looked up by a hash of the kernel, the slot and
   * every binding's buffer, offset and size, then compared field by field, so no key string is built per dispatch.
   */
  #bindGroup(kernel: Kernel, slot: number): GPUBindGroup {
    const n = kernel.bindings.length, bufs = this.#bufs, offs = this.#offs, sizes = this.#sizes;
    let h = Math.imul(kernel.id ^ (slot + 1), 0x01000193);
    for (let i = 0; i < n; i++) {
      h = Math.imul(h ^ bufferId(bufs[i]), 0x01000193);
      h = Math.imul(h ^ offs[i], 0x01000193);
      h = Math.imul(h ^ sizes[i], 0x01000193);
    }
    const head = this.#bindGroups.get(h);
    search: for (let e = head; e; e = e.next) {
      if (e.kernel !== kernel || e.slot !== slot) continue;
      for (let i = 0; i < n; i++) {
        if (e.bufs[i] !== bufs[i] || e.offs[i] !== offs[i] || e.sizes[i] !== sizes[i]) continue search;
      }
      return e.bg;
    }
    const entries: GPUBindGroupEntry[] = [
      {
        binding: 0,
        resource: {
          buffer: this.#paramBuffer,
          offset: slot < 0 ? 0 : slot * PARAM_STRIDE,
          size: PARAM_STRIDE,
        },
      },
    ];
    for (let i = 0; i < n; i++) {
      entries.push({ binding: i + 1, resource: { buffer: bufs[i], offset: offs[i], size: sizes[i] } });
    }
    const bg = this.device.createBindGroup({ label: kernel.name, layout: kernel.layout, entries });
    let next = head;
    if (this.#bindGroupCount >= 20000) {
      this.#bindGroups.clear();
      this.#bindGroupCount = 0;
      next = undefined;
    }
    this.#bindGroups.set(h, {
      kernel,
      slot,
      bufs: bufs.slice(0, n),
      offs: offs.slice(0, n),
      sizes: sizes.slice(0, n),
      bg,
      next,
    });
    this.#bindGroupCount++;
    this.stats.bindGroups++;
    return bg;
  }

  /** The open compute pass (begun on demand); x, y, z: the dispatch's grid, recorded when profiling by grid. */
  #computePass(name: string, x: number, y: number, z: number): GPUComputePassEncoder {
    this.#encoder ??= this.device.createCommandEncoder();
    if (this.#pass) return this.#pass;
    if (this.#profile) {
      const p = this.#profile;
      const i = p.names.length;
      if (2 * i + 2 > p.querySet.count) {
        this.flush();
        return this.#computePass(name, x, y, z);
      }
      p.names.push(
        p.perDispatch
          ? { name, grid: p.byGrid ? `${x}×${y}×${z}` : undefined, phase: p.phase }
          : { name: "pass", phase: p.phase },
      );
      this.#pass = this.#encoder!.beginComputePass({
        timestampWrites: {
          querySet: p.querySet,
          beginningOfPassWriteIndex: 2 * i,
          endOfPassWriteIndex: 2 * i + 1,
        },
      });
    } else {
      this.#pass = this.#encoder.beginComputePass();
    }
    this.#passPipeline = null;
    return this.#pass;
  }

  #endProfiledPass(): void {
    this.#pass?.end();
    this.#pass = null;
  }

  /** Records a buffer-to-buffer copy (ends the current compute pass). */
  copy(src: Bindable, dst: Bindable, bytes?: number): void {
    const s = src instanceof Tensor
      ? { buffer: src.buffer, offset: src.byteOffset, size: src.byteLength }
      : src;
    const d = dst instanceof Tensor
      ? { buffer: dst.buffer, offset: dst.byteOffset, size: dst.byteLength }
      : dst;
    const n = bytes ?? Math.min(s.size, d.size);
    this.#pass?.end();
    this.#pass = null;
    this.#encoder ??= this.device.createCommandEncoder();
    this.#encoder.copyBufferToBuffer(s.buffer, s.offset, d.buffer, d.offset, n);
  }

  /** Submits everything recorded so far as one command buffer. */
  flush(): void {
    if (!this.#encoder) return;
    const t0 = performance.now();
    this.#pass?.end();
    this.#pass = null;
    if (this.#paramCount) {
      this.device.queue.writeBuffer(
        this.#paramBuffer,
        0,
        this.#paramStaging,
        0,
        this.#paramCount * PARAM_STRIDE,
      );
    }
    const p = this.#profile;
    if (p && p.names.length) {
      this.#encoder.resolveQuerySet(p.querySet, 0, 2 * p.names.length, p.resolve, 0);
    }
    this.device.queue.submit([this.#encoder.finish()]);
    this.stats.submits++;
    this.stats.submitMs += performance.now() - t0;
    this.#encoder = null;
    this.#paramCount = 0;
    if (p && p.names.length) this.#collectProfile();
    if (this.#uncaptured) {
      const msg = this.#uncaptured;
      this.#uncaptured = null;
      throw new Error(`GPU error: ${msg}`);
    }
  }

  /**
   * Submits what is recorded and marks the queue's current end without waiting: `wait()` (one counted host sync)
   * resolves once the GPU has finished everything submitted before the fence. Lets a loop keep many steps in flight
   * and await only every few steps.
   */
  fence(): Fence {
    this.flush();
    const done = this.device.queue.onSubmittedWorkDone();
    done.catch(() => {}); // surfaces when waited on
    return {
      wait: async () => {
        this.stats.hostSyncs++;
        await done;
        this.#throwPending();
      },
    };
  }

  #throwPending(): void {
    if (this.#compileErrors.length) throw new Error(this.#compileErrors.splice(0).join("\n"));
    if (this.#uncaptured) {
      const msg = this.#uncaptured;
      this.#uncaptured = null;
      throw new Error(`GPU error: ${msg}`);
    }
  }

  /** Waits for the queue (one counted host sync) and rethrows any pipeline compilation error or GPU error. */
  async sync(): Promise<void> {
    this.flush();
    this.stats.hostSyncs++;
    await this.device.queue.onSubmittedWorkDone();
    const pending = this.#pendingScopes.splice(0);
    await Promise.all(pending);
    if (this.#compileErrors.length) throw new Error(this.#compileErrors.splice(0).join("\n"));
    await this.#profileDone;
    if (this.#uncaptured) {
      const msg = this.#uncaptured;
      this.#uncaptured = null;
      throw new Error(`GPU error: ${msg}`);
    }
  }

  // ---------------------------------------------------------------- profiling

  #profileDone: Promise<void> = Promise.resolve();

  /**
   * GPU timing with timestamp queries: per kernel (each dispatch gets its own pass; slower) or, with
   * `perDispatch: false`, per compute pass as recorded (one "pass" entry: the GPU busy time of the work); with
   * `byGrid`, per kernel and workgroup grid (a GEMM's grid tells its shape).
   */
  startProfile(o: { perDispatch?: boolean; byGrid?: boolean } = {}): boolean {
    if (!this.gpu.hasTimestamps) return false;
    this.flush();
    this.#profile = {
      perDispatch: o.perDispatch ?? true,
      byGrid: o.byGrid ?? false,
      querySet: this.device.createQuerySet({ type: "timestamp", count: 4096 }),
      resolve: this.device.createBuffer({
        size: 4096 * 8,
        usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
      }),
      names: [],
      totals: new Map(),
    };
    return true;
  }

  #collectProfile(): void {
    const p = this.#profile!;
    const names = p.names.splice(0);
    const staging = this.device.createBuffer({
      size: names.length * 16,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    const enc = this.device.createCommandEncoder();
    enc.copyBufferToBuffer(p.resolve, 0, staging, 0, names.length * 16);
    this.device.queue.submit([enc.finish()]);
    const prev = this.#profileDone;
    this.#profileDone = prev.then(async () => {
      await staging.mapAsync(GPUMapMode.READ);
      const t = new BigUint64Array(staging.getMappedRange().slice(0));
      staging.destroy();
      names.forEach(({ name, grid, phase }, i) => {
        const ms = Number(t[2 * i + 1] - t[2 * i]) / 1e6;
        const key = `${name}@${grid ?? ""}#${phase ?? ""}`;
        const e = p.totals.get(key) ?? {
          name,
          ...(grid === undefined ? {} : { grid }),
          ...(phase === undefined ? {} : { phase }),
          dispatches: 0,
          ms: 0,
        };
        e.dispatches++;
        e.ms += ms > 0 && ms < 1e6 ? ms : 0;
        p.totals.set(key, e);
      });
    });
  }

  /**
   * While profiling: the dispatches recorded from now on are counted under `phase` (KernelTiming.phase; null: none),
   * e.g. a generation's decode steps apart from its prompt pass. Ends the current pass so that it holds one phase.
   */
  profilePhase(phase: string | null): void {
    if (!this.#profile) return;
    this.#pass?.end();
    this.#pass = null;
    this.#profile.phase = phase ?? undefined;
  }

  /** Stops profiling and returns per-kernel totals, largest first. */
  async stopProfile(): Promise<KernelTiming[]> {
    if (!this.#profile) return [];
    await this.sync();
    const totals = [...this.#profile.totals.values()].sort((a, b) => b.ms - a.ms);
    this.#profile.querySet.destroy();
    this.#profile.resolve.destroy();
    this.#profile = null;
    return totals;
  }

  // ---------------------------------------------------------------- memory

  /** A pooled uninitialised tensor. Release it (tensor.release()) to return the buffer to the pool. */
  empty(shape: readonly number[], dtype: DType = "f32"): Tensor {
    const bytes = storageBytes(numel(shape), dtype);
    if (bytes > this.gpu.limits.maxBufferSize) {
      throw new Error(`A [${shape}] ${dtype} tensor (${bytes} bytes) exceeds the adapter's max buffer size`);
    }
    const cls = sizeClass(Math.max(4, bytes));
    const list = this.#free.get(cls);
    let buffer = list?.pop();
    if (!buffer) {
      buffer = this.device.createBuffer({ size: cls, usage: USAGE });
      this.allocatedBytes += cls;
      this.peakBytes = Math.max(this.peakBytes, this.allocatedBytes);
    }
    return new Tensor(buffer, shape, dtype, 0, (t) => this.#recycle(t.buffer));
  }

  #recycle(buffer: GPUBuffer): void {
    const cls = buffer.size;
    let list = this.#free.get(cls);
    if (!list) this.#free.set(cls, list = []);
    list.push(buffer);
  }

  readonly #caches = new Set<() => void>();

  /**
   * Registers a kernel module's per-context cache of tensors that depend on no weight (e.g. attention masks by
   * shape): `dropCaches()` calls `drop`, which releases them (the end of a job, so pool bytes return to a baseline).
   */
  registerCache(drop: () => void): void {
    this.#caches.add(drop);
  }

  /** Releases the registered caches' tensors (rebuilt on next use). */
  dropCaches(): void {
    for (const drop of this.#caches) drop();
  }

  /** Frees the pool's idle buffers (the live ones stay). */
  trim(): void {
    this.flush();
    for (const list of this.#free.values()) {
      for (const b of list) {
        this.allocatedBytes -= b.size;
        b.destroy();
      }
    }
    this.#free.clear();
    this.#bindGroups.clear();
    this.#bindGroupCount = 0;
  }

  /** Bytes the pool allocates for a tensor of `shape` and `dtype` (its size class). */
  allocationBytes(shape: readonly number[], dtype: DType): number {
    return sizeClass(Math.max(4, storageBytes(numel(shape), dtype)));
  }

  /** Bytes held by the pool: live tensors plus idle buffers. */
  get poolBytes(): number {
    return this.allocatedBytes;
  }

  /** Resets the peak-memory mark to the current allocation. */
  resetPeak(): void {
    this.peakBytes = this.allocatedBytes;
  }

  /**
   * Writes host data into a tensor. Pending commands are submitted first, so data written now
   * never overtakes kernels recorded earlier that still read the old contents.
   */
  write(t: Tensor, data: ArrayBufferView, byteOffsetInTensor = 0): void {
    this.flush();
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    // writeBuffer needs a multiple of 4 bytes
    const padded = bytes.byteLength % 4
      ? (() => {
        const p = new Uint8Array(Math.ceil(bytes.byteLength / 4) * 4);
        p.set(bytes);
        return p;
      })()
      : bytes;
    this.device.queue.writeBuffer(
      t.buffer,
      t.byteOffset + byteOffsetInTensor,
      padded as Uint8Array<ArrayBuffer>,
    );
  }

  /** Uploads values as a new pooled tensor; f16 tensors take float values (rounded) or raw Uint16 bits. */
  upload(data: ArrayLike<number> | ArrayBufferView, shape: readonly number[], dtype: DType = "f32"): Tensor {
    const n = numel(shape);
    const t = this.empty(shape, dtype);
    this.write(t, toBytes(data, n, dtype));
    return t;
  }

  /**
   * Uploads an int8 weight [N,K] with per-group scales (`scales[i / group]` for flat element i; K a multiple of
   * `group`): the `i8` tensor carries the f32 scales tensor in `quant`.
   */
  uploadInt8(q: Int8Array, scales: Float32Array, shape: readonly number[], group: number): Tensor {
    const K = shape[shape.length - 1];
    if (!(group > 0) || K % group) {
      throw new Error(`int8 weight [${shape}]: K=${K} is not a multiple of group ${group}`);
    }
    if (scales.length * group !== numel(shape)) {
      throw new Error(
        `int8 weight [${shape}] group ${group} needs ${numel(shape) / group} scales, got ${scales.length}`,
      );
    }
    const t = this.upload(q, shape, "i8");
    t.quant = { scales: this.upload(scales, [scales.length]), group };
    return t;
  }

  /** Uploads a 2-D weight split into row blocks that each fit the max storage binding. */
  uploadRowChunked(
    data: ArrayLike<number> | ArrayBufferView,
    rows: number,
    cols: number,
    dtype: DType,
  ): RowChunkedTensor {
    const bytes = toBytes(data, rows * cols, dtype);
    return this.rowChunked(rows, cols, dtype, (row0, nrows, t) => {
      const eb = dtype === "f16" ? 2 : 4;
      this.write(t, new Uint8Array(bytes.buffer, bytes.byteOffset + row0 * cols * eb, nrows * cols * eb));
    });
  }

  /** Allocates row blocks of a [rows, cols] weight and lets `fill` write each (for streaming loads). */
  rowChunked(
    rows: number,
    cols: number,
    dtype: DType,
    fill: (row0: number, rows: number, t: Tensor) => void,
  ): RowChunkedTensor {
    const eb = dtype === "f16" ? 2 : 4;
    let per = Math.max(1, Math.floor(this.maxBinding / (cols * eb)));
    if (dtype === "f16" && cols % 2 && per > 1) per -= per % 2; // keep chunk starts word-aligned
    const chunks = [];
    for (let row0 = 0; row0 < rows; row0 += per) {
      const n = Math.min(per, rows - row0);
      const t = this.empty([n, cols], dtype);
      fill(row0, n, t);
      chunks.push({ row0, rows: n, tensor: t });
    }
    return { rows, cols, dtype, chunks };
  }

  /** Reads a tensor back to the host (submits pending work). f16 comes back as float32 values. */
  async read(t: Tensor): Promise<Float32Array | Int32Array | Uint32Array> {
    return typedView(t, await this.readBytes(t));
  }

  /**
   * Reads several tensors back with one wait (one staging buffer, one mapAsync: one host sync), e.g. the sampled ids
   * of every batch chunk of an SR round.
   */
  async readMany(ts: readonly Tensor[]): Promise<(Float32Array | Int32Array | Uint32Array)[]> {
    const raw = await this.#readBytesMany(ts);
    return ts.map((t, i) => typedView(t, raw[i]));
  }

  async readF32(t: Tensor): Promise<Float32Array> {
    const r = await this.read(t);
    if (!(r instanceof Float32Array)) throw new Error(`Expected a float tensor, got ${t.dtype}`);
    return r;
  }

  /** Raw bytes of a tensor (whole 32-bit words). */
  async readBytes(t: Tensor): Promise<Uint8Array> {
    return (await this.#readBytesMany([t]))[0];
  }

  async #readBytesMany(ts: readonly Tensor[]): Promise<Uint8Array[]> {
    const offsets: number[] = [];
    let size = 0;
    for (const t of ts) {
      offsets.push(size);
      size += Math.ceil(t.byteLength / 4) * 4;
    }
    const staging = this.device.createBuffer({
      size: Math.max(4, size),
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    ts.forEach((t, i) =>
      this.copy(t, { buffer: staging, offset: offsets[i], size: t.byteLength }, t.byteLength)
    );
    this.flush();
    this.stats.readbacks++;
    this.stats.hostSyncs++;
    await staging.mapAsync(GPUMapMode.READ);
    const mapped = staging.getMappedRange();
    const out = ts.map((t, i) => new Uint8Array(mapped.slice(offsets[i], offsets[i] + t.byteLength)));
    staging.destroy();
    await Promise.all(this.#pendingScopes.splice(0));
    if (this.#compileErrors.length) throw new Error(this.#compileErrors.splice(0).join("\n"));
    if (this.#uncaptured) {
      const msg = this.#uncaptured;
      this.#uncaptured = null;
      throw new Error(`GPU error: ${msg}`);
    }
    return out;
  }
}

/** A tensor's read-back bytes as values (f16 as float32, i8 widened to i32). */
function typedView(t: Tensor, raw: Uint8Array): Float32Array | Int32Array | Uint32Array {
  switch (t.dtype) {
    case "f32":
      return new Float32Array(raw.buffer, raw.byteOffset, t.size);
    case "i32":
      return new Int32Array(raw.buffer, raw.byteOffset, t.size);
    case "u32":
      return new Uint32Array(raw.buffer, raw.byteOffset, t.size);
    case "f16":
      return f16BitsToF32(new Uint16Array(raw.buffer, raw.byteOffset, t.size));
    case "i8":
      return Int32Array.from(new Int8Array(raw.buffer, raw.byteOffset, t.size));
  }
}

function toBytes(data: ArrayLike<number> | ArrayBufferView, n: number, dtype: DType): Uint8Array {
  if (
    ArrayBuffer.isView(data) && !(data instanceof Float32Array && dtype === "f16") &&
    !(data instanceof Float64Array)
  ) {
    const want = dtypeBytes(dtype) * n;
    if (data.byteLength !== want) {
      throw new Error(`Upload of ${n} ${dtype} elements needs ${want} bytes, got ${data.byteLength}`);
    }
    return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  }
  const arr = data as ArrayLike<number>;
  if (arr.length !== n) throw new Error(`Upload of ${n} elements got ${arr.length} values`);
  switch (dtype) {
    case "f32":
      return new Uint8Array(Float32Array.from(arr).buffer);
    case "f16":
      return new Uint8Array(f32ToF16Bits(arr).buffer);
    case "i32":
      return new Uint8Array(Int32Array.from(arr).buffer);
    case "u32":
      return new Uint8Array(Uint32Array.from(arr).buffer);
    case "i8":
      return new Uint8Array(Int8Array.from(arr).buffer);
  }
}

let shared: Promise<GpuContext> | null = null;

/** One process-wide context (tests and tools share a device). */
export function sharedContext(): Promise<GpuContext> {
  shared ??= (async () => {
    const { acquireGpu } = await import("./device.ts");
    return new GpuContext(await acquireGpu({ timestamps: true }));
  })();
  return shared;
}
