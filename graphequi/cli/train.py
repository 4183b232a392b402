"""``graphequi train``: the trainer of :mod:`graphequi.train` on the command line."""
from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from graphequi.train.config import add_train_arguments
    add_train_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from graphequi.train import config_from_args, run as run_training
    run_training(config_from_args(args))
    return 0
