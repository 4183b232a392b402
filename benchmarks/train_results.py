"""The training results of graphequi's models against published figures: one command per number.

Each experiment is a YAML config under ``benchmarks/configs/`` (read by
``graphequi train --config``); counting experiments run once per target.

    python benchmarks/train_results.py --list                 # experiments and their exact commands
    python benchmarks/train_results.py zinc-ppgn++-cpu        # run one (all its seeds)
    python benchmarks/train_results.py count-ppgn++ --targets triangle
    python benchmarks/train_results.py --all --tiny           # smoke test: 1 epoch, 64 graphs, 1 seed
    python benchmarks/train_results.py --all --collect        # gather runs made by hand (config kept)

Each run writes to ``runs/benchmarks/<experiment>[/<target>]/`` (git-ignored:
the trainer's summary.json, learning curves, checkpoints; ``--tiny`` runs
under ``.../tiny/``); ``benchmarks/results/train_results.json`` collects the
summaries of the full runs and ``train_results.png`` plots them against the
published targets. Runs resume from their checkpoints when rerun with
``--resume``. Multi-process: run the printed command under
``torchrun --nproc_per_node=K -m graphequi.train ...`` instead.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional


HERE = Path(__file__).resolve().parent
CONFIGS = HERE / "configs"
RESULTS = HERE / "results"
RUNS = HERE.parent / "runs" / "benchmarks"  # checkpoints and curves (git-ignored)
COUNT_TARGETS = ("triangle", "tailed_triangle", "4cycle", "star")


@dataclass(frozen=True)
class Experiment:
    """One row group of the results: a config, the metric reported, and its target."""

    name: str
    config: str
    metric: str
    goal: Optional[tuple] = None  # ("<=", 0.01): the number must satisfy it
    reference: str = ""
    targets: tuple = ()  # counting targets (one run each)


EXPERIMENTS = {e.name: e for e in [
    Experiment("count-ppgn++", "count_ppgnpp.yaml", "nmae", ("<=", 0.01),
               "PPGN reference ~0.009/0.010/0.015/0.009 (triangle/tailed/4-cycle/star)", COUNT_TARGETS),
    Experiment("count-ppgn++-cosine", "count_ppgnpp_cosine.yaml", "nmae", ("<=", 0.01),
               "as count-ppgn++, lr annealed over 70 epochs (about 1 h on one core)", COUNT_TARGETS),
    Experiment("count-gin", "count_gin.yaml", "nmae", None,
               "plain message passing: expected to fail on cycles", COUNT_TARGETS),
    Experiment("zinc-ppgn++-cpu", "zinc_ppgnpp_cpu.yaml", "mae", ("<=", 0.12), "CPU budget 2 h"),
    Experiment("zinc-ppgn++-cpu-bf16", "zinc_ppgnpp_cpu_bf16.yaml", "mae", ("<=", 0.12),
               "CPU budget 2 h: bf16 autocast, 2 threads, cosine over 60 epochs"),
    Experiment("zinc-ppgn++-gpu", "zinc_ppgnpp_gpu.yaml", "mae", ("<=", 0.070),
               "paper ~0.071 (official train set)"),
    Experiment("molhiv-polygin", "molhiv_polygin.yaml", "rocauc", (">", 0.7558),
               "OGB leaderboard GIN 75.58 +- 1.40"),
    Experiment("molhiv-polygin-cpu", "molhiv_polygin_cpu.yaml", "rocauc", (">", 0.7558),
               "OGB leaderboard GIN 75.58 +- 1.40; width 64, 50 epochs, 3 seeds (fits 2 CPU cores)"),
    Experiment("molhiv-gin", "molhiv_gin.yaml", "rocauc", None, "control: same model without polynomials"),
    Experiment("molhiv-gin-cpu", "molhiv_gin_cpu.yaml", "rocauc", None,
               "control for molhiv-polygin-cpu: same narrow model without polynomials"),
    Experiment("molesol-polygin", "molesol_polygin.yaml", "rmse", None, "compare: OGB paper GIN baseline"),
    Experiment("molbace-polygin", "molbace_polygin.yaml", "rocauc", None, "compare: OGB paper GIN baseline"),
]}


def runs_of(exp: Experiment, targets=None):
    """(label, extra flags) per run of an experiment."""
    if not exp.targets:
        return [(exp.name, [])]
    return [(f"{exp.name}/{t}", ["--target", t]) for t in (targets or exp.targets)]


def _shown(path: Path) -> str:
    """Paths relative to the repository root (where the commands are meant to be run)."""
    try:
        return str(path.relative_to(HERE.parent))
    except ValueError:
        return str(path)


def command(exp: Experiment, flags, out: Path, root: str, tiny: bool) -> list:
    cmd = ["graphequi", "train", "--config", _shown(CONFIGS / exp.config), "--root", root, "--out", _shown(out)]
    cmd += flags
    if tiny:
        cmd += ["--epochs", "1", "--subset", "64", "--seeds", "0", "--no-progress"]
    return cmd


def run(cmd: list, device: Optional[str], resume: bool, threads: Optional[int]) -> dict:
    from graphequi.train import add_train_arguments, config_from_args, train
    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    argv = [str(HERE.parent / a) if a.startswith("benchmarks/") else a for a in cmd[2:]]
    argv += (["--device", device] if device else []) + (["--resume"] if resume else [])
    argv += ["--threads", str(threads)] if threads else []
    return train(config_from_args(parser.parse_args(argv)))


def check(exp: Experiment, value: float) -> str:
    if exp.goal is None:
        return "-"
    op, bound = exp.goal
    ok = value <= bound if op == "<=" else value > bound if op == ">" else value < bound
    return f"{'PASS' if ok else 'MISS'} ({op} {bound})"


def plot(rows: list, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(rows)), 4))
    labels = [r["run"] for r in rows]
    ax.bar(range(len(rows)), [r["test_mean"] for r in rows], yerr=[r["test_std"] for r in rows], capsize=3)
    for i, r in enumerate(rows):
        if r["goal"] is not None:
            ax.hlines(r["goal"][1], i - 0.4, i + 0.4, colors="red", linestyles="--")
    ax.set_xticks(range(len(rows)), labels, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("test metric (mean ± std over seeds)")
    ax.set_title("training results (red dashes: the target)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiments", nargs="*", help=f"any of: {', '.join(EXPERIMENTS)}")
    parser.add_argument("--all", action="store_true", help="every experiment")
    parser.add_argument("--list", action="store_true", help="print the exact command of every run")
    parser.add_argument("--tiny", action="store_true", help="1 epoch, 64 graphs per split, seed 0")
    parser.add_argument("--targets", default=None, help="comma-separated counting targets")
    parser.add_argument("--root", default="data", help="writable dataset cache")
    parser.add_argument("--device", default=None, help="override the configs' device")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--collect", action="store_true",
                        help="train nothing: gather the summary.json of runs already made (e.g. with "
                             "extra flags such as --seeds or --time-limit-h) into the results files")
    args = parser.parse_args(argv)
    names = list(EXPERIMENTS) if args.all or args.list else args.experiments
    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown or not names:
        parser.error(f"unknown or no experiment: {unknown}; choose from {', '.join(EXPERIMENTS)}")
    targets = tuple(args.targets.split(",")) if args.targets else None

    rows = []
    for name in names:
        exp = EXPERIMENTS[name]
        for label, flags in runs_of(exp, targets):
            out = RUNS / label / ("tiny" if args.tiny else "")
            cmd = command(exp, flags, out, args.root, args.tiny)
            if args.list:
                print(f"# {label}: target {exp.goal or '-'} {exp.reference}\n{shlex.join(cmd)}")
                continue
            if args.collect:
                if not (out / "summary.json").is_file():
                    print(f"{label}: no {_shown(out / 'summary.json')}, skipped")
                    continue
                summary = json.loads((out / "summary.json").read_text())
                wall_time = summary["train_wall_time_s"]  # the run's own training time
            else:
                start = time.perf_counter()
                summary = run(cmd, args.device, args.resume, args.threads)
                wall_time = time.perf_counter() - start
            m = exp.metric
            rows.append({"run": label, "metric": m, "collected": args.collect, "test_mean": summary[f"test_{m}_mean"],
                         "test_std": summary[f"test_{m}_std"], "val_mean": summary[f"val_{m}_mean"],
                         "seeds": summary["seeds"], "num_params": summary["num_params"],
                         "hardware": summary["hardware"], "wall_time_s": wall_time,
                         "result_name": summary["result_name"], "goal": exp.goal,
                         "check": check(exp, summary[f"test_{m}_mean"]), "command": shlex.join(cmd),
                         "config": summary.get("config"),
                         "tiny": args.tiny})
    if args.list:
        return 0
    print(f"\n{'run':<28} {'metric':<7} {'test (mean ± std)':<22} {'seeds':<6} {'wall':>8}  target")
    for r in rows:
        print(f"{r['run']:<28} {r['metric']:<7} {r['test_mean']:.4f} ± {r['test_std']:.4f}{'':<6} "
              f"{len(r['seeds']):<6} {r['wall_time_s']:>7.0f}s  {r['check']}")
    if not args.tiny:
        RESULTS.mkdir(parents=True, exist_ok=True)
        store = RESULTS / "train_results.json"
        merged = json.loads(store.read_text()) if store.is_file() else {}
        merged.update({r["run"]: r for r in rows})
        store.write_text(json.dumps(merged, indent=2))
        plot(list(merged.values()), RESULTS / "train_results.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
