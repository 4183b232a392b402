"""Fixtures of the dataset tests: the read-only shared data (skipped when absent)."""
import os
from pathlib import Path

import pytest


def shared_data_dir() -> Path:
    env = os.environ.get("GRAPHEQUI_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data():
    def require(*parts: str) -> Path:
        path = shared_data_dir().joinpath(*parts)
        if not path.exists():
            pytest.skip(f"shared data {path} absent")
        return path
    return require
