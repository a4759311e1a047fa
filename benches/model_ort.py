"""ONNX Runtime side of the model benchmark: exports Pinpoint's network (VGG16 conv5_3, NetVLAD,
whitening) with the same weights to ONNX, then times it.

usage: model_ort.py MODEL_DIR WIDTH HEIGHT BATCH RUNS THREADS   -> prints "images_per_s peak_MB"
Needs: numpy, onnx, onnxruntime (pip).
"""
import json
import os
import resource
import struct
import sys
import time

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
import onnxruntime as ort

CONVS = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
POOL_AFTER = {2, 7, 14, 21}


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


def export(weights, path):
    t = load_safetensors(weights)
    inits, nodes = [], []

    def init(name, arr):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr, dtype=np.float32), name))
        return name

    x = "input"
    for n, i in enumerate(CONVS):
        w = init(f"w{i}", t[f"backbone.{i}.weight"])
        b = init(f"b{i}", t[f"backbone.{i}.bias"])
        y = f"conv{i}"
        nodes.append(helper.make_node("Conv", [x, w, b], [y], pads=[1, 1, 1, 1], kernel_shape=[3, 3]))
        x = y
        if n != len(CONVS) - 1:
            nodes.append(helper.make_node("Relu", [x], [x + "r"]))
            x = x + "r"
        if i in POOL_AFTER:
            nodes.append(helper.make_node("MaxPool", [x], [x + "p"], kernel_shape=[2, 2], strides=[2, 2]))
            x = x + "p"
    eps = init("eps", np.array([1e-12], dtype=np.float32))
    nodes += [
        helper.make_node("ReduceL2", [x], ["fn"], axes=[1], keepdims=1),
        helper.make_node("Max", ["fn", eps], ["fnc"]),
        helper.make_node("Div", [x, "fnc"], ["xn"]),
    ]
    k, d = t["aggregation.centroids"].shape
    init("aw", t["aggregation.conv.weight"])
    nodes.append(helper.make_node("Conv", ["xn", "aw"], ["logits"], kernel_shape=[1, 1]))
    inits.append(numpy_helper.from_array(np.array([0, k, -1], dtype=np.int64), "shape_bkn"))
    inits.append(numpy_helper.from_array(np.array([0, d, -1], dtype=np.int64), "shape_bdn"))
    inits.append(numpy_helper.from_array(np.array([0, k * d], dtype=np.int64), "shape_bv"))
    init("cent", t["aggregation.centroids"][None])
    nodes += [
        helper.make_node("Reshape", ["logits", "shape_bkn"], ["logits3"]),
        helper.make_node("Softmax", ["logits3"], ["a"], axis=1),
        helper.make_node("Reshape", ["xn", "shape_bdn"], ["xf"]),
        helper.make_node("Transpose", ["xf"], ["xft"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["a", "xft"], ["weighted"]),
        helper.make_node("ReduceSum", ["a", "axis2"], ["mass"], keepdims=1),
        helper.make_node("Mul", ["mass", "cent"], ["massc"]),
        helper.make_node("Sub", ["weighted", "massc"], ["vlad0"]),
        helper.make_node("ReduceL2", ["vlad0"], ["vn"], axes=[2], keepdims=1),
        helper.make_node("Max", ["vn", eps], ["vnc"]),
        helper.make_node("Div", ["vlad0", "vnc"], ["vlad1"]),
        helper.make_node("Reshape", ["vlad1", "shape_bv"], ["vlad2"]),
        helper.make_node("ReduceL2", ["vlad2"], ["gn"], axes=[1], keepdims=1),
        helper.make_node("Max", ["gn", eps], ["gnc"]),
        helper.make_node("Div", ["vlad2", "gnc"], ["netvlad"]),
    ]
    inits.append(numpy_helper.from_array(np.array([2], dtype=np.int64), "axis2"))
    out = "netvlad"
    if "whiten.weight" in t:
        init("wmean", t["whiten.mean"])
        init("wt", t["whiten.weight"].T)
        nodes += [
            helper.make_node("Sub", ["netvlad", "wmean"], ["centered"]),
            helper.make_node("MatMul", ["centered", "wt"], ["proj"]),
            helper.make_node("ReduceL2", ["proj"], ["pn"], axes=[1], keepdims=1),
            helper.make_node("Max", ["pn", eps], ["pnc"]),
            helper.make_node("Div", ["proj", "pnc"], ["descriptor"]),
        ]
        out = "descriptor"
    graph = helper.make_graph(
        nodes, "pinpoint",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["b", 3, "h", "w"])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, path)


def main():
    model_dir, w, h, b, runs, threads = sys.argv[1], *map(int, sys.argv[2:7])
    card = json.load(open(os.path.join(model_dir, "model.json")))
    weights = os.path.join(model_dir, card["weights"]["file"])
    cache = os.path.join(os.path.dirname(__file__), "..", "target", "bench-data")
    os.makedirs(cache, exist_ok=True)
    path = os.path.join(cache, f"model-{(card['weights'].get('sha256') or 'x')[:16]}.onnx")
    if not os.path.exists(path):
        export(weights, path)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).normal(0, 60, (b, 3, h, w)).astype(np.float32)
    sess.run(None, {"input": x})
    t = time.time()
    for _ in range(runs):
        sess.run(None, {"input": x})
    rate = runs * b / (time.time() - t)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{rate} {peak}")


if __name__ == "__main__":
    main()
