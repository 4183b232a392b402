"""File writes that are never seen half done.

A file is written next to its destination under a temporary name and renamed
over it (:func:`os.replace`, atomic on POSIX and Windows), so a reader -- or a
run resumed after ``SIGKILL`` -- finds either the old complete file or the new
complete file, never a truncated one.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Union

__all__ = ["atomic_write"]


def atomic_write(path: Union[str, os.PathLike], write: Callable[[Path], None]) -> None:
    """Produce ``path`` by calling ``write(tmp)`` on a sibling temporary path, then renaming.

    Args:
        path: the destination (its folder must exist).
        write: writes the complete content to the path it is given, e.g.
            ``lambda tmp: torch.save(obj, tmp)`` or ``lambda tmp: tmp.write_text(text)``.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> atomic_write(folder / "a.txt", lambda tmp: tmp.write_text("done"))
        >>> (folder / "a.txt").read_text(), sorted(p.name for p in folder.iterdir())
        ('done', ['a.txt'])
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # an interrupted write leaves no stray partial file behind
        raise
