"""`make bench`: every kernel/engine benchmark, one after the other.

Training results (benchmarks/train_results.py) take hours and are run
separately; see benchmarks/RESULTS.md for their commands.
"""
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = ["scatter.py", "poly.py", "message_passing.py"]


def main() -> int:
    failed = []
    for script in BENCHMARKS:
        print(f"\n=== benchmarks/{script} ===", flush=True)
        if subprocess.run([sys.executable, str(HERE / script), *sys.argv[1:]]).returncode != 0:
            failed.append(script)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
