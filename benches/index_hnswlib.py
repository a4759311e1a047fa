"""hnswlib side of the index benchmark: same vectors, same M and ef_construction, inner-product
space; prints build time, memory, and recall@10 / latency for several ef.

usage: index_hnswlib.py VECTORS.f32 TRUTH.json N NQ DIM M EFC   (needs: numpy, hnswlib)
"""
import json
import resource
import sys
import time

import hnswlib
import numpy as np


def main():
    path, truth_path, n, nq, dim, m, efc = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:8])
    data = np.fromfile(path, dtype="<f4").reshape(n + nq, dim)
    db, qs = data[:n], data[n:]
    truth = json.load(open(truth_path))
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    index = hnswlib.Index(space="ip", dim=dim)
    t = time.time()
    index.init_index(max_elements=n, ef_construction=efc, M=m)
    index.set_num_threads(2)
    index.add_items(db, np.arange(n))
    build = time.time() - t
    mem = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - rss0
    print(f"hnswlib: M {m} efc {efc}: built in {build:.1f} s ({n / build:.0f} inserts/s), +{mem:.0f} MB peak")
    print(f"{'ef':>6} {'recall@10':>10} {'ms/query':>12} {'queries/s(2t)':>12}")
    for ef in (16, 32, 64, 128, 256, 512):
        index.set_ef(max(ef, 10))
        index.set_num_threads(2)
        t = time.time()
        labels, _ = index.knn_query(qs, k=10)
        qps = nq / (time.time() - t)
        index.set_num_threads(1)
        t = time.time()
        for q in qs:
            index.knn_query(q[None, :], k=10)
        ms = (time.time() - t) * 1000 / nq
        hit = sum(len(set(l.tolist()) & set(t[:10])) for l, t in zip(labels, truth))
        print(f"{ef:>6} {hit / (10 * nq):>10.4f} {ms:>12.3f} {qps:>12.0f}")


if __name__ == "__main__":
    main()
