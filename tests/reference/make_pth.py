"""Writes tensors from a safetensors file into a PyTorch `.pth` checkpoint (zip + pickle, the format
torch.save uses) without needing PyTorch, so the test suite can check `pinpoint model import` on a
real .pth layout. Names are renamed to pytorch-NetVlad's (`encoder.N.*`, `pool.*`, `WPCA.0.*`) and
stored under a `state_dict` key, as pytorch-NetVlad's checkpoints do.

usage: make_pth.py IN.safetensors OUT.pth
"""
import collections
import io
import json
import pickle
import struct
import sys
import types
import zipfile

import numpy as np


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        s, e = info["data_offsets"]
        dt = {"F32": np.float32, "F16": np.float16}[info["dtype"]]
        out[name] = np.frombuffer(data[s:e], dtype=dt).reshape(info["shape"]).astype(np.float32)
    return out


# Stand-ins for the torch globals a checkpoint's pickle refers to: pickle records them by module
# and name only, which is all a reader sees.
torch = types.ModuleType("torch")
torch_utils = types.ModuleType("torch._utils")
sys.modules["torch"] = torch
sys.modules["torch._utils"] = torch_utils


class FloatStorage:
    pass


FloatStorage.__module__ = "torch"
torch.FloatStorage = FloatStorage


def _rebuild_tensor_v2(*args):
    raise RuntimeError("only for pickling")


_rebuild_tensor_v2.__module__ = "torch._utils"
torch_utils._rebuild_tensor_v2 = _rebuild_tensor_v2


class StoredTensor:
    def __init__(self, key, array):
        self.key, self.array = key, array

    def __reduce__(self):
        shape = tuple(self.array.shape)
        stride = tuple(int(s) for s in np.cumprod((1,) + shape[::-1])[:-1][::-1]) if shape else ()
        storage = ("storage", FloatStorage, self.key, "cpu", int(self.array.size))
        return (_rebuild_tensor_v2, (storage, 0, shape, stride, False, collections.OrderedDict()))


class Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, tuple) and len(obj) == 5 and obj[0] == "storage":
            return obj
        return None


def rename(name):
    if name.startswith("backbone."):
        return "encoder." + name[len("backbone."):]
    if name.startswith("aggregation."):
        return "pool." + name[len("aggregation."):]
    if name == "whiten.weight":
        return "WPCA.0.weight"
    return None


def main():
    tensors = load_safetensors(sys.argv[1])
    state = collections.OrderedDict()
    arrays = {}
    for i, (name, arr) in enumerate(sorted(tensors.items())):
        new = rename(name)
        if new is None:
            continue
        if new == "WPCA.0.weight":
            arr = arr.reshape(arr.shape[0], arr.shape[1], 1, 1)
        key = str(i)
        arrays[key] = np.ascontiguousarray(arr, dtype="<f4")
        state[new] = StoredTensor(key, arrays[key])
    if "whiten.weight" in tensors:
        # Patch-NetVLAD's WPCA keeps a bias: W (x - mean) = W x + b with b = -W mean.
        b = -(tensors["whiten.weight"] @ tensors["whiten.mean"])
        arrays["bias"] = np.ascontiguousarray(b, dtype="<f4")
        state["WPCA.0.bias"] = StoredTensor("bias", arrays["bias"])
    buf = io.BytesIO()
    Pickler(buf, protocol=2).dump({"epoch": 1, "state_dict": state})
    with zipfile.ZipFile(sys.argv[2], "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", buf.getvalue())
        for key, arr in arrays.items():
            z.writestr(f"archive/data/{key}", arr.tobytes())
        z.writestr("archive/version", "3\n")


if __name__ == "__main__":
    main()
