"""Training: ``graphequi train`` / ``python -m graphequi.train`` / ``torchrun -m graphequi.train``.

* :class:`TrainConfig` -- the immutable run configuration (defaults < YAML < flags).
* :func:`train` -- all seeds of a config: checkpoints, exact ``--resume``,
  JSONL metrics, learning curves, multi-seed summary, OGB leaderboard JSON.
* :func:`load_task` / :func:`build_model` -- datasets with their metrics, and models by name
  (the table :data:`graphequi.train.models.MODELS`).
* :mod:`~graphequi.train.checkpoint` / :mod:`~graphequi.train.reporting` -- what a seed saves
  and resumes from; the summary, leaderboard JSON, curves and table of a run.

Multi-process (DDP, gloo on CPU, nccl on CUDA), one node::

    torchrun --nproc_per_node=2 -m graphequi.train --dataset zinc --model ppgn++

Several nodes: the same flags plus ``--nnodes``, ``--node_rank`` and a
rendezvous endpoint, run once on every node (see :mod:`graphequi.train.distributed`)::

    torchrun --nnodes=2 --node_rank=$NODE_RANK --nproc_per_node=4 \\
        --rdzv_backend=c10d --rdzv_endpoint=$HOST:29500 --rdzv_id=zinc \\
        -m graphequi.train --dataset zinc --model ppgn++ --device cuda
"""
from graphequi.train.config import TrainConfig, add_train_arguments, config_from_args
from graphequi.train.models import build_model
from graphequi.train.tasks import Task, load_task, synthetic_count_graphs
from graphequi.train.trainer import run, train

__all__ = ["TrainConfig", "add_train_arguments", "config_from_args", "build_model", "Task",
           "load_task", "synthetic_count_graphs", "run", "train", "main"]


def main(argv=None) -> int:
    """``python -m graphequi.train`` (also what ``graphequi train`` runs)."""
    import argparse
    parser = argparse.ArgumentParser(prog="python -m graphequi.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_train_arguments(parser)
    args = parser.parse_args(argv)
    run(config_from_args(args))
    return 0
