"""``graphequi train``: the trainer of :mod:`graphequi.train` on the command line."""
from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from graphequi.train.config import add_train_arguments
    add_train_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from graphequi.train import config_from_args, run as run_training
    try:
        config = config_from_args(args)
    except (ValueError, FileNotFoundError) as err:
        # a mistake on the command line or in the config file: one line, as argparse does
        raise SystemExit(f"graphequi train: {err}") from None
    run_training(config)
    return 0
