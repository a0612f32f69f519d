# Independent cross-check of the TypeScript torch reader: Python's own zipfile + pickle (stub classes, nothing from
# torch executed) give each tensor's dtype, shape and the SHA-256 of its contiguous little-endian bytes.
# Usage: python3 pt_sha256.py FIXTURE_ROOT > fixture_tensors.json   (output committed next to this script)
import collections, hashlib, json, pickle, sys, zipfile

SIZES = {"HalfStorage": ("float16", 2), "FloatStorage": ("float32", 4), "BFloat16Storage": ("bfloat16", 2),
         "LongStorage": ("int64", 8), "ByteStorage": ("uint8", 1)}

class Stub:
    def __init__(self, *a): self.args = a
    def __setstate__(self, s): self.state = s

class Tensor:
    def __init__(self, storage, offset, size, stride, *rest):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

def read(path):
    z = zipfile.ZipFile(path)
    pkl = [n for n in z.namelist() if n.endswith("data.pkl")][0]
    prefix = pkl[: -len("data.pkl")]

    class U(pickle.Unpickler):
        def find_class(self, mod, name):
            if (mod, name) == ("torch._utils", "_rebuild_tensor_v2"): return Tensor
            if (mod, name) == ("collections", "OrderedDict"): return collections.OrderedDict
            if name == "set": return set
            if mod == "torch" and name.endswith("Storage"): return name
            return Stub

        def persistent_load(self, pid):
            _, typ, key, _loc, numel = pid
            return (typ, key, numel)

    root = U(z.open(pkl)).load()
    sd = root["module"] if isinstance(root, dict) and "module" in root else root
    out = {}
    for k, t in sd.items():
        typ, key, numel = t.storage
        dtype, es = SIZES[typ]
        n = 1
        for d in t.size: n *= d
        exp, c = [], 1
        for d in reversed(t.size): exp.insert(0, c); c *= d
        assert all(s == e or d == 1 for s, e, d in zip(t.stride, exp, t.size)), (k, "non-contiguous")
        data = z.read(prefix + "data/" + key)[t.offset * es : (t.offset + n) * es]
        out[k] = {"dtype": dtype, "shape": list(t.size), "sha256": hashlib.sha256(data).hexdigest()}
    return out

root = sys.argv[1]
files = {"coglm": "sat/coglm/1/mp_rank_00_model_states.pt", "dsr": "sat/cogview2-dsr/1/mp_rank_00_model_states.pt",
         "itersr": "sat/cogview2-itersr/1/mp_rank_00_model_states.pt", "vqvae": "icetk/ice_image.pt"}
json.dump({m: read(f"{root}/{p}") for m, p in files.items()}, sys.stdout, indent=0, sort_keys=False)
print()
