"""``python -m graphequi.train ...`` and ``torchrun ... -m graphequi.train ...``."""
import sys

from graphequi.train import main

if __name__ == "__main__":
    sys.exit(main())
