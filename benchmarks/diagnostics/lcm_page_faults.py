"""Where LCM's large-E time goes: minor page faults and kernel (system) time
of one forward + backward step, next to the user time, for the aggregators
of ``benchmarks/lcm_speed.py`` on its uniform case.

A tensor above glibc's mmap threshold (at most 32 MiB by default) is a fresh
mapping whose pages fault in on first touch, so at E = 2^17 rows of 128
floats (64 MiB a tensor) every large intermediate costs its size in page
faults on every step. Run it twice to see how much of a step that is:

    OMP_NUM_THREADS=1 python benchmarks/diagnostics/lcm_page_faults.py --log2-size 17
    MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=4294967296 \\
        OMP_NUM_THREADS=1 python benchmarks/diagnostics/lcm_page_faults.py --log2-size 17

(the second run keeps freed blocks in the heap, so they are reused without
faults; it changes the process's allocator, not graphequi).
"""
import argparse
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import lcm_speed  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--log2-size", type=int, default=17)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--names", default="graphequi-lcm-ordered-gru,graphequi-lcm-mlp,pyg-gru,pyg-lcm")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    x, index = lcm_speed.make_case("uniform", 2 ** args.log2_size, 1024, 128, "cpu")
    modules = {n: lcm_speed.build(n, 128, "cpu") for n in args.names.split(",")}
    for m in modules.values():
        lcm_speed.step(m, x, index, 1024)  # warm-up
    rows = {n: [] for n in modules}
    for _ in range(args.repeats):  # alternated
        for name, m in modules.items():
            r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
            lcm_speed.step(m, x, index, 1024)
            t1, r1 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
            rows[name].append((t1 - t0, r1.ru_minflt - r0.ru_minflt, r1.ru_stime - r0.ru_stime,
                               r1.ru_utime - r0.ru_utime))
    env = {k: v for k, v in os.environ.items() if k.startswith("MALLOC_")}
    print(f"E = 2^{args.log2_size}, F = 128, 1024 groups; allocator environment: {env or 'default'}")
    print("| aggregator | step ms | minor faults | system ms | user ms |")
    print("|---|---|---|---|---|")
    for name, r in rows.items():
        med = [statistics.median(v[i] for v in r) for i in range(4)]
        print(f"| {name} | {1e3 * med[0]:.0f} | {med[1]:.0f} | {1e3 * med[2]:.0f} | {1e3 * med[3]:.0f} |")


if __name__ == "__main__":
    main()
