"""Training configuration: one immutable value, from defaults < YAML < flags.

A YAML file holds any :class:`TrainConfig` field, with model constructor
arguments under ``model_kwargs``::

    dataset: zinc
    model: ppgn++
    epochs: 400
    batch_size: 64
    lr: 0.001
    model_kwargs: {hidden_channels: 95, num_layers: 8}

Flags given on the command line override the file; ``--model-arg KEY=VALUE``
(repeatable, VALUE parsed as YAML) overrides one entry of ``model_kwargs``.
"""
from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional

import yaml

from graphequi.train.models import get_model, model_help
from graphequi.train.schedules import SCHEDULE_NAMES, SCHEDULES

#: name -> what it runs (validation and ``--help`` read this table)
PRECISIONS = {
    "32": "float32 throughout",
    "bf16": "the forward pass under bfloat16 autocast (matrix products in bfloat16, e.g. on AMX CPUs "
            "or GPUs; weights, optimizer and batch-norm statistics stay float32)",
}

__all__ = ["PRECISIONS", "TrainConfig", "add_train_arguments", "config_from_args", "parse_seeds"]


def _freeze(mapping: Mapping[str, Any]) -> tuple:
    """Canonical hashable form of a flat keyword mapping (sorted items)."""
    out = []
    for k, v in sorted(mapping.items()):
        if isinstance(v, list):
            v = tuple(v)
        out.append((str(k), v))
    return tuple(out)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run (hashable, comparable).

    ``batch_size`` is the *global* batch: under ``torchrun`` each of the
    ``W`` processes takes ``batch_size / W`` graphs of the same shuffled
    order, so a run gives (nearly) the same result for any ``W``.
    """

    dataset: str
    model: str
    root: str = "data"
    out: Optional[str] = None
    epochs: int = 100
    seeds: tuple = (0,)
    device: str = "auto"
    batch_size: int = 128
    eval_batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.0
    lr_factor: float = 0.5
    lr_patience: int = 10
    min_lr: float = 1e-5
    loss: Optional[str] = None
    polys: str = "ppgn++"
    target: Optional[str] = None
    fold: int = 0
    subset: Optional[int] = None
    grad_clip: Optional[float] = None
    threads: Optional[int] = None
    scheduler: str = "plateau"
    precision: str = "32"
    precise_bn_batches: Optional[int] = None
    bucket_by_size: bool = False
    time_limit_h: Optional[float] = None
    test_every_epoch: bool = True
    resume: bool = False
    progress: bool = True
    model_kwargs: tuple = ()
    associativity_weight: float = 0.0
    associativity_triples: int = 256

    def __post_init__(self):
        if isinstance(self.model_kwargs, Mapping):
            object.__setattr__(self, "model_kwargs", _freeze(self.model_kwargs))
        seeds = parse_seeds(self.seeds) if isinstance(self.seeds, (str, int)) else tuple(int(s) for s in self.seeds)
        object.__setattr__(self, "seeds", seeds)
        object.__setattr__(self, "precision", str(self.precision))  # YAML reads `precision: 32` as an int
        problems = []
        if self.epochs < 1:
            problems.append(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1 or self.eval_batch_size < 1:
            problems.append("batch sizes must be >= 1")
        if not self.seeds:
            problems.append("no seeds given")
        if len(set(self.seeds)) != len(self.seeds):
            problems.append(f"repeated seeds in {self.seeds}")
        if self.lr <= 0:
            problems.append(f"lr must be > 0, got {self.lr}")
        if not 0 < self.lr_factor < 1:
            problems.append(f"lr_factor must be in (0, 1), got {self.lr_factor}")
        if self.scheduler not in SCHEDULES:
            problems.append(f"scheduler must be one of {', '.join(SCHEDULE_NAMES)}, got {self.scheduler!r}")
        if self.precision not in PRECISIONS:
            problems.append(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.precise_bn_batches is not None and self.precise_bn_batches < 1:
            problems.append(f"precise_bn_batches must be >= 1, got {self.precise_bn_batches}")
        if self.time_limit_h is not None and self.time_limit_h <= 0:
            problems.append(f"time_limit_h must be > 0, got {self.time_limit_h}")
        if self.threads is not None and self.threads < 1:
            problems.append(f"threads must be >= 1, got {self.threads}")
        if self.subset is not None and self.subset < 1:
            problems.append(f"subset must be >= 1, got {self.subset}")
        if self.associativity_weight < 0:
            problems.append(f"associativity_weight must be >= 0, got {self.associativity_weight}")
        if self.associativity_triples < 1:
            problems.append(f"associativity_triples must be >= 1, got {self.associativity_triples}")
        try:
            get_model(str(self.model)).check_arguments(key for key, _ in self.model_kwargs)
        except ValueError as err:  # the model table's own message
            problems.append(str(err))
        from graphequi.train.tasks import check_dataset_name  # tasks imports this module
        try:
            check_dataset_name(self.dataset, self.target)
        except ValueError as err:
            problems.append(str(err))
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            problems.append(f"device must be auto, cpu or cuda, got {self.device!r}")
        if problems:
            raise ValueError("invalid training config: " + "; ".join(problems))

    @property
    def model_options(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.model_kwargs}

    @property
    def out_dir(self) -> Path:
        return Path(self.out) if self.out else Path("runs") / f"{self.dataset}-{self.model}"

    def resolved_device(self) -> str:
        if self.device == "auto":
            import torch
            return "cuda" if torch.cuda.is_available() else "cpu"
        return self.device

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["seeds"] = list(self.seeds)
        d["model_kwargs"] = self.model_options
        return d

    # Fields that must agree for --resume to continue a run (epochs may grow).
    RESUME_KEYS = ("dataset", "model", "batch_size", "lr", "weight_decay", "lr_factor", "lr_patience",
                   "loss", "polys", "target", "fold", "subset", "model_kwargs", "scheduler",
                   "bucket_by_size", "precision", "precise_bn_batches", "associativity_weight",
                   "associativity_triples")

    @classmethod
    def defaults(cls) -> dict:
        """Field name -> default value (for the fields that have one)."""
        return {f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown config key(s): {', '.join(unknown)}; known: {', '.join(sorted(names))}")
        return cls(**d)


def parse_seeds(text) -> tuple:
    """``"0,1,2"`` or ``"0-9"`` or ``3`` -> a tuple of ints."""
    if isinstance(text, int):
        return (text,)
    seeds = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part[1:]:
            lo, hi = part.split("-", 1)
            seeds.extend(range(int(lo), int(hi) + 1))
        else:
            seeds.append(int(part))
    return tuple(seeds)


# flag -> config field; each flag defaults to None so that only given flags override the YAML file
_FLAGS = {
    "--dataset": ("dataset", str, "zinc, ogbg-mol*, count-<target>, a TU name (MUTAG, ...) or synthetic-count"),
    "--model": ("model", str, model_help()),
    "--root": ("root", str, "writable dataset root (default ./data)"),
    "--out": ("out", str, "output folder (default runs/DATASET-MODEL)"),
    "--epochs": ("epochs", int, "number of epochs"),
    "--seeds": ("seeds", str, "comma-separated seeds or a range, e.g. 0,1,2 or 0-9"),
    "--device": ("device", str, "auto, cpu or cuda"),
    "--batch-size": ("batch_size", int, "global batch size (split over torchrun processes)"),
    "--lr": ("lr", float, "initial learning rate"),
    "--weight-decay": ("weight_decay", float, "Adam weight decay"),
    "--lr-factor": ("lr_factor", float, "factor of the learning rate on a validation plateau (default 0.5)"),
    "--lr-patience": ("lr_patience", int, "epochs without validation improvement before the decay"),
    "--min-lr": ("min_lr", float, "stop once the learning rate falls below this"),
    "--eval-batch-size": ("eval_batch_size", int, "batch size for validation and test"),
    "--grad-clip": ("grad_clip", float, "clip the gradient norm to this value"),
    "--loss": ("loss", str, "l1, mse, bce or ce (default: the dataset's)"),
    "--target": ("target", str, "target column name (counting datasets)"),
    "--fold": ("fold", int, "fold index (TU datasets)"),
    "--subset": ("subset", int, "use a fixed random subset of N graphs per split (smoke tests)"),
    "--polys": ("polys", str, "polynomial set for the poly models (default ppgn++)"),
    "--threads": ("threads", int, "torch CPU threads per process (default: torch's choice)"),
    "--scheduler": ("scheduler", str, "; ".join(f"{name}: {s.description}" for name, s in SCHEDULES.items())),
    "--precision": ("precision", str, "; ".join(f"{name}: {text}" for name, text in PRECISIONS.items())),
    "--precise-bn-batches": ("precise_bn_batches", int, "before each evaluation, re-estimate the batch-norm "
                                                        "statistics as the plain average over N training batches"),
    "--time-limit-h": ("time_limit_h", float, "stop after this many hours of training (per seed)"),
    "--associativity-weight": ("associativity_weight", float, "add this weight times the associativity error "
                                                              "of the model's LCM aggregations to the loss"),
    "--associativity-triples": ("associativity_triples", int, "triples sampled per LCM layer and batch "
                                                              "for that error (default 256)"),
}


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``graphequi train`` / ``python -m graphequi.train`` flags."""
    parser.add_argument("--config", help="YAML file with TrainConfig fields")
    for flag, (_, typ, text) in _FLAGS.items():
        parser.add_argument(flag, type=typ, default=None, help=text)
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoints in --out")
    parser.add_argument("--no-progress", action="store_true", help="no tqdm bars")
    parser.add_argument("--test-at-best-only", action="store_true",
                        help="score the test split only at epochs where validation improves "
                             "(the only test figure reported; saves the test pass on other epochs)")
    parser.add_argument("--bucket-by-size", action="store_true",
                        help="batch graphs of similar size together (less padding for dense models)")
    parser.add_argument("--model-arg", action="append", default=[], metavar="KEY=VALUE",
                        help="model constructor argument (VALUE parsed as YAML); repeatable")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Defaults < ``--config`` YAML < explicit flags."""
    values: dict = {}
    if getattr(args, "config", None):
        path = Path(args.config)
        if not path.is_file():
            raise FileNotFoundError(f"config file not found: {path}")
        loaded = yaml.safe_load(path.read_text()) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{path}: expected a mapping of config keys")
        values.update(loaded)
    for flag, (name, _, _) in _FLAGS.items():
        v = getattr(args, name, None)
        if v is not None:
            values[name] = v
    if args.resume:
        values["resume"] = True
    if args.no_progress:
        values["progress"] = False
    if args.bucket_by_size:
        values["bucket_by_size"] = True
    if args.test_at_best_only:
        values["test_every_epoch"] = False
    kwargs = dict(values.get("model_kwargs") or {})
    for item in args.model_arg:
        if "=" not in item:
            raise ValueError(f"--model-arg expects KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        kwargs[k.strip()] = yaml.safe_load(v)
    values["model_kwargs"] = kwargs
    for required in ("dataset", "model"):
        if not values.get(required):
            raise ValueError(f"--{required} is required (flag or config file)")
    return TrainConfig.from_dict(values)
