"""Entry point of the ``graphequi`` command: one subcommand per module."""
from __future__ import annotations

import argparse
import sys
from typing import Callable, Optional, Sequence

# Subcommands register here: name -> (add_arguments(parser), run(args) -> int).
SUBCOMMANDS: dict[str, tuple[Callable, Callable]] = {}


def _demo_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="graphequi-demo", help="output folder")
    parser.add_argument("--quick", action="store_true", help="smallest sizes")


def _demo(args) -> int:
    from graphequi.cli import demo
    return demo.run(args)


SUBCOMMANDS["demo"] = (_demo_args, _demo)


def _expressivity_args(parser: argparse.ArgumentParser) -> None:
    from graphequi.cli import expressivity
    expressivity.add_arguments(parser)


def _expressivity(args) -> int:
    from graphequi.cli import expressivity
    return expressivity.run(args)


SUBCOMMANDS["expressivity"] = (_expressivity_args, _expressivity)


def _train_args(parser: argparse.ArgumentParser) -> None:
    from graphequi.cli import train
    train.add_arguments(parser)


def _train(args) -> int:
    from graphequi.cli import train
    return train.run(args)


SUBCOMMANDS["train"] = (_train_args, _train)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="graphequi", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (add_args, _) in SUBCOMMANDS.items():
        add_args(sub.add_parser(name))
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    return SUBCOMMANDS[args.command][1](args) or 0


if __name__ == "__main__":
    sys.exit(main())
