"""Independent NumPy implementation of Pinpoint's place-recognition network (VGG16 conv5_3 ->
optional CRN mask -> NetVLAD -> optional PCA-whitening), used by the test suite to check the
Candle forward pass. It reads the same safetensors weights and the same preprocessed input, and
shares no code with the Rust implementation.

usage: placenet.py WEIGHTS OUT.json INPUT.bin...
Each INPUT.bin holds a little-endian header (u32 width, u32 height) then width*height*3 float32
values: the preprocessed image, channel-major (3, H, W), RGB, means subtracted.
"""
import json
import struct
import sys

import numpy as np


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    dtypes = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "BF16": None}
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        dt = dtypes[info["dtype"]]
        out[name] = np.frombuffer(data[start:end], dtype=dt).reshape(info["shape"]).astype(np.float64)
    return out


def conv2d(x, w, b, pad):
    """x (C, H, W), w (O, C, k, k), zero padding, stride 1 -> (O, H', W')."""
    c, h, wd = x.shape
    o, _, k, _ = w.shape
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    ho, wo = h + 2 * pad - k + 1, wd + 2 * pad - k + 1
    cols = np.empty((c, k, k, ho, wo), dtype=x.dtype)
    for dy in range(k):
        for dx in range(k):
            cols[:, dy, dx] = xp[:, dy:dy + ho, dx:dx + wo]
    out = w.reshape(o, -1) @ cols.reshape(c * k * k, ho * wo)
    if b is not None:
        out += b[:, None]
    return out.reshape(o, ho, wo)


def max_pool2(x):
    c, h, w = x.shape
    return x[:, : h // 2 * 2, : w // 2 * 2].reshape(c, h // 2, 2, w // 2, 2).max(axis=(2, 4))


CONVS = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
POOL_AFTER = {2, 7, 14, 21}


def vgg16(x, t):
    for n, i in enumerate(CONVS):
        x = conv2d(x, t[f"backbone.{i}.weight"], t[f"backbone.{i}.bias"], 1)
        if n != len(CONVS) - 1:
            x = np.maximum(x, 0)
        if i in POOL_AFTER:
            x = max_pool2(x)
    return x


def avg_pool_3x3_s2_ceil(x):
    """Caffe AVE pooling, kernel 3, stride 2, no padding, ceil mode; divides by in-image count."""
    c, h, w = x.shape
    ho = 1 if h <= 3 else -(-(h - 3) // 2) + 1
    wo = 1 if w <= 3 else -(-(w - 3) // 2) + 1
    out = np.zeros((c, ho, wo))
    for i in range(ho):
        for j in range(wo):
            win = x[:, 2 * i: min(2 * i + 3, h), 2 * j: min(2 * j + 3, w)]
            out[:, i, j] = win.mean(axis=(1, 2))
    return out


def conv_transpose_bilinear_x2(x):
    """(1, h, w) -> (1, 2h, 2w): transposed conv, kernel 4 (bilinear), stride 2, padding 1."""
    k1 = np.array([0.25, 0.75, 0.75, 0.25])
    k = np.outer(k1, k1)
    _, h, w = x.shape
    full = np.zeros((2 * h + 2, 2 * w + 2))
    for i in range(h):
        for j in range(w):
            full[2 * i: 2 * i + 4, 2 * j: 2 * j + 4] += x[0, i, j] * k
    return full[None, 1:-1, 1:-1]


def crn_mask(f, t):
    p = avg_pool_3x3_s2_ceil(f)
    ctx = []
    for name, k in (("filter_3_3", 3), ("filter_5_5", 5), ("filter_7_7", 7)):
        w = t[f"aggregation.crn.{name}.weight"]
        b = t[f"aggregation.crn.{name}.bias"]
        ctx.append(np.maximum(conv2d(p, w, b, k // 2), 0))
    ctx = np.concatenate(ctx, axis=0)
    acc_w = t.get("aggregation.crn.acc_w.weight", np.ones((1, 84, 1, 1)))
    acc = np.maximum(conv2d(ctx, acc_w, t["aggregation.crn.acc_w.bias"], 0), 0)
    return conv_transpose_bilinear_x2(acc)


def l2n(v, axis):
    return v / np.maximum(np.linalg.norm(v, axis=axis, keepdims=True), 1e-12)


def netvlad(f, t, mask):
    d, h, w = f.shape
    x = l2n(f.reshape(d, h * w), 0)  # (D, N)
    wconv = t["aggregation.conv.weight"].reshape(-1, d)
    logits = wconv @ x
    if "aggregation.conv.bias" in t:
        logits += t["aggregation.conv.bias"][:, None]
    logits -= logits.max(axis=0, keepdims=True)
    a = np.exp(logits)
    a /= a.sum(axis=0, keepdims=True)  # (K, N)
    if mask is not None:
        a = a * mask.reshape(1, h * w)
    c = t["aggregation.centroids"]  # (K, D)
    vlad = np.stack([(a[k][None, :] * (x - c[k][:, None])).sum(axis=1) for k in range(c.shape[0])])
    vlad = l2n(vlad, 1).reshape(-1)  # cluster-major: k * D + d
    return vlad / max(np.linalg.norm(vlad), 1e-12)


def whiten(v, t):
    if "whiten.weight" not in t:
        return v
    y = t["whiten.weight"] @ (v - t["whiten.mean"])
    if "whiten.bias" in t:
        y += t["whiten.bias"]
    return y / max(np.linalg.norm(y), 1e-12)


def main():
    weights, out_path, inputs = sys.argv[1], sys.argv[2], sys.argv[3:]
    t = load_safetensors(weights)
    has_crn = "aggregation.crn.filter_3_3.weight" in t
    results = []
    for path in inputs:
        with open(path, "rb") as f:
            w, h = struct.unpack("<II", f.read(8))
            x = np.frombuffer(f.read(), dtype="<f4").astype(np.float64).reshape(3, h, w)
        f5 = vgg16(x, t)
        mask = crn_mask(f5, t) if has_crn else None
        v = netvlad(f5, t, mask)
        results.append({
            "input": path,
            "netvlad": v.tolist(),
            "descriptor": whiten(v, t).tolist(),
            "mask": None if mask is None else mask.reshape(-1).tolist(),
        })
    with open(out_path, "w") as f:
        json.dump(results, f)


if __name__ == "__main__":
    main()
