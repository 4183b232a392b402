"""Fixtures of the dataset tests: the read-only shared data (skipped when absent)."""
from pathlib import Path

import pytest

from graphequi.datasets import default_source


@pytest.fixture(scope="session")
def shared_data():
    def require(*parts: str) -> Path:
        path = default_source().joinpath(*parts)
        if not path.exists():
            pytest.skip(f"shared data {path} absent")
        return path
    return require
