"""Deprecated aliases of renamed public names: each use warns with
:class:`DeprecationWarning` and forwards to the new name."""
from __future__ import annotations

import functools
import warnings
from typing import Callable


def warn_renamed(old: str, new: str, *, stacklevel: int = 3) -> None:
    """Warn that ``old`` was renamed to ``new`` (``stacklevel`` points at the caller)."""
    warnings.warn(f"{old} is deprecated, use {new}", DeprecationWarning, stacklevel=stacklevel)


def renamed_function(old: str, new: str, fn: Callable) -> Callable:
    """``fn`` under its old name ``old`` (methods work too: ``self`` is passed on)."""
    @functools.wraps(fn)
    def alias(*args, **kwargs):
        warn_renamed(old, new)
        return fn(*args, **kwargs)

    alias.__name__ = alias.__qualname__ = old.rsplit(".", 1)[-1]
    alias.__doc__ = f"Deprecated alias of ``{new}``."
    return alias


def renamed_property(old: str, new: str) -> property:
    """A read-only attribute ``old`` that returns attribute ``new``."""
    def get(self):
        warn_renamed(f"{type(self).__name__}.{old}", f"{type(self).__name__}.{new}")
        return getattr(self, new)

    return property(get, doc=f"Deprecated alias of ``{new}``.")
