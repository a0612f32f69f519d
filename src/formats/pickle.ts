// A safe reader for Python pickle data (protocols 0-5 as torch.save writes them): builds plain values, never runs code.
// Not an interpreter: only an allow-list of globals gets meaning (torch tensor rebuild, storage types, OrderedDict, set);
// any other global becomes an inert `PyObject` placeholder that is recorded but never called.

/** A Python tuple (kept distinct from lists). */
export class PyTuple {
  constructor(readonly items: unknown[]) {}
}

/** A reference to a global (`module.name`) as it appears in the pickle; never resolved to code. */
export class PyGlobal {
  constructor(readonly module: string, readonly name: string) {}
  get qualname(): string {
    return `${this.module}.${this.name}`;
  }
}

/** An object of a class outside the allow-list: its constructor call and state are recorded, nothing is executed. */
export class PyObject {
  state: unknown = undefined;
  items: unknown[] = [];
  dict: Map<unknown, unknown> = new Map();
  constructor(readonly cls: PyGlobal, readonly args: unknown[], readonly how: "reduce" | "newobj" | "inst") {}
  describe(): string {
    return `an object of class ${this.cls.qualname}`;
  }
}

/** A torch storage referenced by a persistent id: ('storage', <StorageType>, key, location, numel). */
export class TorchStorage {
  constructor(
    readonly key: string,
    readonly dtype: TorchDType,
    readonly numel: number,
    readonly location: string,
  ) {}
}

export type TorchDType = "f16" | "bf16" | "f32" | "f64" | "i64" | "i32" | "i16" | "i8" | "u8" | "bool";

export const TORCH_DTYPE_BYTES: Record<TorchDType, number> = {
  f16: 2,
  bf16: 2,
  f32: 4,
  f64: 8,
  i64: 8,
  i32: 4,
  i16: 2,
  i8: 1,
  u8: 1,
  bool: 1,
};

const STORAGE_TYPES: Record<string, TorchDType> = {
  HalfStorage: "f16",
  BFloat16Storage: "bf16",
  FloatStorage: "f32",
  DoubleStorage: "f64",
  LongStorage: "i64",
  IntStorage: "i32",
  ShortStorage: "i16",
  CharStorage: "i8",
  ByteStorage: "u8",
  BoolStorage: "bool",
};

/** A tensor view: storage + element offset + shape + strides (elements), as torch._utils._rebuild_tensor_v2 gets them. */
export class TorchTensor {
  constructor(
    readonly storage: TorchStorage,
    readonly storageOffset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) {}
  get numel(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }
}

/** The storage type named by a global (torch.HalfStorage, ...), or null. */
export function storageDType(g: unknown): TorchDType | null {
  if (!(g instanceof PyGlobal) || g.module !== "torch") return null;
  return STORAGE_TYPES[g.name] ?? null;
}

export interface UnpickleOptions {
  /** Name of the data for error messages (e.g. "model.pt!archive/data.pkl"). */
  origin?: string;
  /** Resolves a persistent id (BINPERSID); without it persistent ids stay as their raw values. */
  persistentLoad?: (pid: unknown) => unknown;
  /** Largest number of stack + memo entries (guards against hostile input). */
  maxObjects?: number;
}

function toNumber(v: unknown, what: string): number {
  if (typeof v === "bigint") {
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new Error(`${what}: integer ${v} is too large`);
    }
    return Number(v);
  }
  if (typeof v !== "number" || !Number.isInteger(v)) {
    throw new Error(`${what}: expected an integer, got ${describe(v)}`);
  }
  return v;
}

/** Short description of a value for error messages. */
export function describe(v: unknown): string {
  if (v === null) return "None";
  if (v instanceof PyObject) return v.describe();
  if (v instanceof PyGlobal) return `the global ${v.qualname}`;
  if (v instanceof PyTuple) return `a tuple of ${v.items.length}`;
  if (v instanceof TorchTensor) return `a tensor`;
  if (v instanceof TorchStorage) return `a storage`;
  if (v instanceof Map) return `a dict of ${v.size}`;
  if (v instanceof Set) return `a set of ${v.size}`;
  if (Array.isArray(v)) return `a list of ${v.length}`;
  if (v instanceof Uint8Array) return `bytes (${v.length})`;
  if (typeof v === "string") return `the string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + "…" : v)}`;
  return `${typeof v} ${String(v)}`;
}

function tupleItems(v: unknown, what: string): unknown[] {
  if (v instanceof PyTuple) return v.items;
  if (Array.isArray(v)) return v;
  throw new Error(`${what}: expected a tuple, got ${describe(v)}`);
}

/** Gives meaning to a call of an allow-listed global; returns undefined for globals without meaning. */
function callAllowed(fn: PyGlobal, args: unknown[], origin: string): unknown {
  const q = fn.qualname;
  switch (q) {
    case "torch._utils._rebuild_tensor_v2":
    case "torch._utils._rebuild_tensor": {
      const [storage, offset, size, stride] = args;
      // Not a storage (no persistent-id resolver, or a hostile program): leave the call an inert placeholder.
      if (!(storage instanceof TorchStorage)) return undefined;
      const shape = tupleItems(size, `${origin}: ${q} size`).map((d) => toNumber(d, `${origin}: ${q} size`));
      const strides = tupleItems(stride, `${origin}: ${q} stride`).map((d) =>
        toNumber(d, `${origin}: ${q} stride`)
      );
      if (shape.length !== strides.length) {
        throw new Error(`${origin}: ${q}: size and stride have different ranks`);
      }
      return new TorchTensor(storage, toNumber(offset, `${origin}: ${q} storage_offset`), shape, strides);
    }
    case "torch._utils._rebuild_parameter":
    case "torch._utils._rebuild_parameter_with_state":
      return args[0];
    case "collections.OrderedDict":
      return new Map();
    case "builtins.set":
    case "__builtin__.set":
    case "builtins.frozenset":
    case "__builtin__.frozenset":
      return new Set(args.length ? iterable(args[0], origin) : []);
    case "builtins.list":
    case "__builtin__.list":
      return args.length ? [...iterable(args[0], origin)] : [];
    case "builtins.dict":
    case "__builtin__.dict":
      return new Map();
    case "torch.Size":
      return new PyTuple(args.length ? [...iterable(args[0], origin)] : []);
  }
  return undefined;
}

function iterable(v: unknown, origin: string): unknown[] {
  if (Array.isArray(v)) return v;
  if (v instanceof PyTuple) return v.items;
  if (v instanceof Set) return [...v];
  throw new Error(`${origin}: expected a list or tuple, got ${describe(v)}`);
}

/**
 * Reads one pickle program. Hostile input cannot run code; it can at most produce placeholders or an Error naming
 * the offset and opcode. Work and memory are bounded by the input length.
 */
export function unpickle(data: Uint8Array, opts: UnpickleOptions = {}): unknown {
  const origin = opts.origin ?? "pickle";
  const maxObjects = opts.maxObjects ?? 50_000_000;
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const dec = new TextDecoder("utf-8", { fatal: true });
  // True ISO-8859-1 (TextDecoder's "latin1" is windows-1252).
  const latin1 = {
    decode(b: Uint8Array): string {
      let s = "";
      for (let i = 0; i < b.length; i += 8192) s += String.fromCharCode(...b.subarray(i, i + 8192));
      return s;
    },
  };
  let pos = 0;
  let op = 0, opPos = 0;
  let stack: unknown[] = [];
  const marks: unknown[][] = [];
  const memo = new Map<number, unknown>();

  const fail = (msg: string): never => {
    throw new Error(`${origin}: ${msg} (opcode 0x${op.toString(16).padStart(2, "0")} at byte ${opPos})`);
  };
  const need = (n: number) => {
    if (!(n >= 0) || pos + n > data.length) {
      fail(`truncated pickle: needs ${n} more bytes, ${data.length - pos} left`);
    }
  };
  const u8 = () => (need(1), data[pos++]);
  const u16 = () => (need(2), pos += 2, dv.getUint16(pos - 2, true));
  const u32 = () => (need(4), pos += 4, dv.getUint32(pos - 4, true));
  const i32 = () => (need(4), pos += 4, dv.getInt32(pos - 4, true));
  const u64 = () => {
    need(8);
    const v = dv.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(data.length)) fail(`length ${v} exceeds the data`);
    return Number(v);
  };
  const bytes = (n: number) => (need(n), pos += n, data.subarray(pos - n, pos));
  const utf8 = (b: Uint8Array) => {
    try {
      return dec.decode(b);
    } catch {
      return fail("invalid UTF-8 in a string");
    }
  };
  const line = () => {
    const end = data.indexOf(0x0a, pos);
    if (end < 0) fail("truncated pickle: unterminated text argument");
    const s = latin1.decode(data.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const push = (v: unknown) => {
    if (stack.length + memo.size > maxObjects) fail("too many objects");
    stack.push(v);
  };
  const pop = () => {
    if (!stack.length) fail("stack underflow");
    return stack.pop();
  };
  const top = () => {
    if (!stack.length) fail("stack underflow");
    return stack[stack.length - 1];
  };
  const popMark = () => {
    if (!marks.length) fail("no MARK on the stack");
    const items = stack;
    stack = marks.pop()!;
    return items;
  };
  const setMemo = (k: number) => {
    if (memo.size > maxObjects) fail("too many memo entries");
    memo.set(k, top());
  };
  const getMemo = (k: number) => {
    if (!memo.has(k)) fail(`memo key ${k} was never stored`);
    push(memo.get(k));
  };
  const longLE = (b: Uint8Array): number | bigint => {
    if (b.length === 0) return 0;
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
    if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
    return v >= -BigInt(Number.MAX_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };
  const setItem = (d: unknown, k: unknown, v: unknown) => {
    if (d instanceof Map) d.set(k, v);
    else if (d instanceof PyObject) d.dict.set(k, v);
    else fail(`SETITEM on ${describe(d)}`);
  };
  const append = (l: unknown, items: unknown[]) => {
    if (Array.isArray(l)) {
      for (const x of items) l.push(x);
    } else if (l instanceof PyObject) l.items.push(...items);
    else fail(`APPEND on ${describe(l)}`);
  };
  const global = (module: string, name: string) => push(new PyGlobal(module, name));
  const call = (fn: unknown, args: unknown[], how: "reduce" | "newobj" | "inst") => {
    if (!(fn instanceof PyGlobal)) {
      // Calling a placeholder or a value: keep the record, run nothing.
      return push(new PyObject(fn instanceof PyObject ? fn.cls : new PyGlobal("?", describe(fn)), args, how));
    }
    const r = callAllowed(fn, args, origin);
    push(r === undefined ? new PyObject(fn, args, how) : r);
  };

  while (true) {
    opPos = pos;
    if (pos >= data.length) fail("truncated pickle: no STOP opcode");
    op = data[pos++];
    switch (op) {
      case 0x80: { // PROTO
        const v = u8();
        if (v > 5) fail(`unsupported pickle protocol ${v}`);
        break;
      }
      case 0x95: // FRAME (frames are just a hint for buffered readers)
        u64();
        break;
      case 0x2e: { // STOP
        const v = pop();
        return v;
      }
      case 0x28: // MARK
        marks.push(stack);
        stack = [];
        break;
      case 0x30: // POP
        if (stack.length) stack.pop();
        else popMark();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        push(top());
        break;
      // --- constants and numbers
      case 0x4e: // NONE
        push(null);
        break;
      case 0x88: // NEWTRUE
        push(true);
        break;
      case 0x89: // NEWFALSE
        push(false);
        break;
      case 0x4a: // BININT
        push(i32());
        break;
      case 0x4b: // BININT1
        push(u8());
        break;
      case 0x4d: // BININT2
        push(u16());
        break;
      case 0x8a: // LONG1
        push(longLE(bytes(u8())));
        break;
      case 0x8b: { // LONG4
        const n = i32();
        if (n < 0) fail("negative LONG4 length");
        push(longLE(bytes(n)));
        break;
      }
      case 0x47: // BINFLOAT (big-endian double)
        need(8);
        push(dv.getFloat64(pos, false));
        pos += 8;
        break;
      case 0x49: { // INT (text; "00"/"01" are False/True)
        const s = line().trim();
        if (s === "00") push(false);
        else if (s === "01") push(true);
        else {
          if (!/^[+-]?\d+$/.test(s)) fail(`bad INT ${JSON.stringify(s)}`);
          const b = BigInt(s);
          push(b <= BigInt(Number.MAX_SAFE_INTEGER) && b >= -BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b);
        }
        break;
      }
      case 0x4c: { // LONG (text, trailing L)
        const s = line().trim().replace(/L$/, "");
        if (!/^[+-]?\d+$/.test(s)) fail(`bad LONG ${JSON.stringify(s)}`);
        const b = BigInt(s);
        push(b <= BigInt(Number.MAX_SAFE_INTEGER) && b >= -BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b);
        break;
      }
      case 0x46: { // FLOAT (text)
        const v = Number(line().trim());
        push(v);
        break;
      }
      // --- strings and bytes
      case 0x58: // BINUNICODE
        push(utf8(bytes(u32())));
        break;
      case 0x8c: // SHORT_BINUNICODE
        push(utf8(bytes(u8())));
        break;
      case 0x8d: // BINUNICODE8
        push(utf8(bytes(u64())));
        break;
      case 0x56: // UNICODE (raw-unicode-escape text; treated as latin1 without escapes)
        push(line());
        break;
      case 0x53: { // STRING (quoted repr)
        const s = line().trim();
        if (s.length < 2 || s[0] !== s[s.length - 1] || (s[0] !== "'" && s[0] !== '"')) {
          fail("bad STRING argument");
        }
        push(s.slice(1, -1));
        break;
      }
      case 0x54: { // BINSTRING (py2 str)
        const n = i32();
        if (n < 0) fail("negative BINSTRING length");
        push(latin1.decode(bytes(n)));
        break;
      }
      case 0x55: // SHORT_BINSTRING
        push(latin1.decode(bytes(u8())));
        break;
      case 0x42: // BINBYTES
        push(bytes(u32()).slice());
        break;
      case 0x43: // SHORT_BINBYTES
        push(bytes(u8()).slice());
        break;
      case 0x8e: // BINBYTES8
      case 0x96: // BYTEARRAY8
        push(bytes(u64()).slice());
        break;
      // --- containers
      case 0x7d: // EMPTY_DICT
        push(new Map());
        break;
      case 0x5d: // EMPTY_LIST
        push([]);
        break;
      case 0x29: // EMPTY_TUPLE
        push(new PyTuple([]));
        break;
      case 0x8f: // EMPTY_SET
        push(new Set());
        break;
      case 0x85: // TUPLE1
        push(new PyTuple([pop()]));
        break;
      case 0x86: { // TUPLE2
        const b = pop(), a = pop();
        push(new PyTuple([a, b]));
        break;
      }
      case 0x87: { // TUPLE3
        const c = pop(), b = pop(), a = pop();
        push(new PyTuple([a, b, c]));
        break;
      }
      case 0x74: // TUPLE
        push(new PyTuple(popMark()));
        break;
      case 0x6c: // LIST
        push(popMark());
        break;
      case 0x64: { // DICT
        const items = popMark();
        if (items.length % 2) fail("DICT with an odd number of items");
        const m = new Map();
        for (let i = 0; i < items.length; i += 2) m.set(items[i], items[i + 1]);
        push(m);
        break;
      }
      case 0x91: // FROZENSET
        push(new Set(popMark()));
        break;
      case 0x73: { // SETITEM
        const v = pop(), k = pop();
        setItem(top(), k, v);
        break;
      }
      case 0x75: { // SETITEMS
        const items = popMark();
        if (items.length % 2) fail("SETITEMS with an odd number of items");
        const d = top();
        for (let i = 0; i < items.length; i += 2) setItem(d, items[i], items[i + 1]);
        break;
      }
      case 0x61: { // APPEND
        const v = pop();
        append(top(), [v]);
        break;
      }
      case 0x65: { // APPENDS
        const items = popMark();
        append(top(), items);
        break;
      }
      case 0x90: { // ADDITEMS
        const items = popMark();
        const s = top();
        if (!(s instanceof Set)) fail(`ADDITEMS on ${describe(s)}`);
        for (const x of items) (s as Set<unknown>).add(x);
        break;
      }
      // --- memo
      case 0x71: // BINPUT
        setMemo(u8());
        break;
      case 0x72: // LONG_BINPUT
        setMemo(u32());
        break;
      case 0x94: // MEMOIZE
        setMemo(memo.size);
        break;
      case 0x70: { // PUT (text)
        const k = Number(line());
        if (!Number.isInteger(k) || k < 0) fail("bad PUT key");
        setMemo(k);
        break;
      }
      case 0x68: // BINGET
        getMemo(u8());
        break;
      case 0x6a: // LONG_BINGET
        getMemo(u32());
        break;
      case 0x67: { // GET (text)
        const k = Number(line());
        if (!Number.isInteger(k)) fail("bad GET key");
        getMemo(k);
        break;
      }
      // --- globals and objects (never executed)
      case 0x63: { // GLOBAL "module\nname\n"
        const module = line(), name = line();
        global(module, name);
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop(), module = pop();
        if (typeof name !== "string" || typeof module !== "string") fail("STACK_GLOBAL needs two strings");
        global(module as string, name as string);
        break;
      }
      case 0x52: { // REDUCE
        const args = pop(), fn = pop();
        call(fn, tupleItems(args, `${origin}: REDUCE arguments at byte ${opPos}`), "reduce");
        break;
      }
      case 0x81: { // NEWOBJ
        const args = pop(), cls = pop();
        call(cls, tupleItems(args, `${origin}: NEWOBJ arguments at byte ${opPos}`), "newobj");
        break;
      }
      case 0x92: { // NEWOBJ_EX
        const _kwargs = pop(), args = pop(), cls = pop();
        call(cls, tupleItems(args, `${origin}: NEWOBJ_EX arguments at byte ${opPos}`), "newobj");
        break;
      }
      case 0x69: { // INST "module\nname\n" + marked args
        const module = line(), name = line();
        const args = popMark();
        push(new PyObject(new PyGlobal(module, name), args, "inst"));
        break;
      }
      case 0x6f: { // OBJ: marked [cls, *args]
        const items = popMark();
        if (!items.length) fail("OBJ without a class");
        const cls = items[0];
        push(
          new PyObject(
            cls instanceof PyGlobal ? cls : new PyGlobal("?", describe(cls)),
            items.slice(1),
            "inst",
          ),
        );
        break;
      }
      case 0x62: { // BUILD: record the state on placeholders; dicts merge a dict state (OrderedDict.__setstate__)
        const state = pop();
        const obj = top();
        if (obj instanceof PyObject) obj.state = state;
        else if (obj instanceof Map && state instanceof Map) { for (const [k, v] of state) obj.set(k, v); }
        // Anything else (tensor + backward hooks state, sets, ...) keeps its value; the state is dropped.
        break;
      }
      case 0x51: { // BINPERSID
        const pid = pop();
        push(opts.persistentLoad ? opts.persistentLoad(pid) : pid);
        break;
      }
      case 0x50: { // PERSID (text)
        const pid = line();
        push(opts.persistentLoad ? opts.persistentLoad(pid) : pid);
        break;
      }
      default:
        fail(`unknown or unsupported pickle opcode`);
    }
  }
}

/**
 * The persistent-id resolver of torch.save's zip format: ('storage', torch.<T>Storage, key, location, numel).
 * Unknown storage types are rejected naming the type.
 */
export function torchPersistentLoad(origin: string): (pid: unknown) => TorchStorage {
  return (pid) => {
    const t = tupleItems(pid, `${origin}: persistent id`);
    if (t[0] !== "storage") throw new Error(`${origin}: unsupported persistent id kind ${describe(t[0])}`);
    const [, type, key, location, numel] = t;
    const dtype = storageDType(type);
    if (!dtype) {
      throw new Error(
        `${origin}: storage of unsupported type ${type instanceof PyGlobal ? type.qualname : describe(type)}`,
      );
    }
    if (typeof key !== "string") throw new Error(`${origin}: storage key is ${describe(key)}`);
    const n = toNumber(numel, `${origin}: storage ${key} numel`);
    if (n < 0) throw new Error(`${origin}: storage ${key} has a negative size`);
    return new TorchStorage(key, dtype, n, typeof location === "string" ? location : "cpu");
  };
}
