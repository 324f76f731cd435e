"""File-system faults for a server whose data directory we can reach.

:func:`block_directory` makes a directory unusable for writes by moving it aside and putting a
regular file at its path (mkdir and file creation below it then fail with ENOTDIR/EEXIST even for
root, which ``chmod`` would not stop). Restoring removes the file and moves the directory back.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from kalamfuzz.errors import ConfigError

__all__ = ["BlockedDirectory", "block_directory"]

_ASIDE_SUFFIX = ".kalamfuzz-aside"


class BlockedDirectory:
    """A directory replaced by a regular file; :meth:`restore` undoes it (idempotent)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.aside = self.path.with_name(self.path.name + _ASIDE_SUFFIX)
        self.blocked = False
        self._had_dir = False

    def __repr__(self) -> str:
        return f"BlockedDirectory({str(self.path)!r}, blocked={self.blocked})"

    def block(self) -> BlockedDirectory:
        if self.blocked:
            return self
        if self.aside.exists():
            raise ConfigError(
                f"{self.aside} exists (left by an interrupted fault?)",
                hint=f"move it back to {self.path} by hand",
            )
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(f"{self.path} is not a directory", hint="block a directory path")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._had_dir = self.path.is_dir()
        if self._had_dir:
            os.replace(self.path, self.aside)
        self.path.write_bytes(b"kalamfuzz: directory blocked for a fault test\n")
        self.blocked = True
        return self

    def restore(self) -> None:
        if not self.blocked:
            return
        if self.path.is_file() or self.path.is_symlink():
            self.path.unlink()
        elif self.path.is_dir() and self._had_dir:
            # the server recreated it meanwhile; keep its content next to the original
            for child in self.path.iterdir():
                target = self.aside / child.name
                if not target.exists():
                    shutil.move(str(child), str(target))
            shutil.rmtree(self.path)
        if self._had_dir:
            os.replace(self.aside, self.path)
        self.blocked = False

    def __enter__(self) -> BlockedDirectory:
        return self.block()

    def __exit__(self, *exc: object) -> None:
        self.restore()


@contextlib.contextmanager
def block_directory(path: str | os.PathLike[str]) -> Iterator[BlockedDirectory]:
    """``with block_directory(storage_dir / ns / table): ...`` — writes below it fail inside."""
    blocked = BlockedDirectory(path).block()
    try:
        yield blocked
    finally:
        blocked.restore()
