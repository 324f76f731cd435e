"""Short, stable names for a run's generated ones, and no path of the machine that found it.

A report is pasted into a public issue: the run's tagged names (``kf_3f9a1b_12``) mean nothing
to a maintainer, and the finder's paths (a binary, a virtualenv, a home) are nobody's business.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_TAGGED = re.compile(r"kf_([0-9a-f]{6})_(\w+)")
#: Where the report puts the server's data directory (``data_path`` under ``[storage]``).
DATA = "/data"
#: A path outside the data directory (a binary, a virtualenv, a home): no use to a maintainer.
_ANY_PATH = re.compile(r"(?<![\w.:/<>\\])(?:/[^\s'\"\\/:,;()\[\]{}]+){2,}/?")


def scrub_paths(text: str) -> str:
    """``text`` without a path of the machine that found it: the server's data directory becomes
    ``/data`` (``<data>``, as saved transcripts already write it, too), any other absolute path
    of two components or more ``PATH``. URL paths (``/v1/api/sql``) have no data directory in
    them and a scheme or host before them, and are left alone."""
    if "/" not in text and "<data>" not in text:
        return text
    text = text.replace("<data>/", f"{DATA}/")
    # Component by component (each without a slash): no backtracking through long tokens.
    text = re.sub(r"(?<![\w.:/])(?:/[^\s'\"\\/]+)*?/data/(?=tmp\b)", f"{DATA}/", text)
    # a storage directory (``<data>/storage``, ``<data>/storage-second``) wherever the data is
    text = re.sub(
        r"(?<![\w.:/])(?:/[^\s'\"\\/]+)*?/(?=storage(?:-[\w-]+)?(?:[/'\"\s\\]|$))",
        f"{DATA}/",
        text,
    )

    def other(m: re.Match[str]) -> str:
        path = m.group(0)
        if path.startswith((f"{DATA}/", "/v1/", "/health")):
            return path
        return "PATH"

    return _ANY_PATH.sub(other, text)


class Names:
    """Short stable names for a run's generated ones: ``kf_3f9a1b_12`` (a namespace) becomes
    ``app``, ``kf_3f9a1b_12_chat`` (a scenario's) ``chat``, ``kf_3f9a1b_alice`` becomes
    ``alice``, storage directories ``/data/<name>``; no path of the finder's machine."""

    def __init__(self, texts: Iterable[str]) -> None:
        self.tag = ""
        for text in texts:
            found = _TAGGED.search(text)
            if found:
                self.tag = found.group(1)
                break

    def __call__(self, text: str) -> str:
        tag = self.tag
        if tag and tag in text:
            text = text.replace("<data>/", f"{DATA}/")
            # An absolute path, component by component: a pattern that could start anywhere in
            # a long token without spaces (a 1,000-row JSON page) backtracked for minutes.
            text = re.sub(rf"(?:/[^\s'\"/]+)*/storage-(\w+)-{tag}", rf"{DATA}/storage-\1", text)
            text = re.sub(rf"kf_{tag}_\d+_(\w+)", r"\1", text)  # a scenario's namespace: chat
            text = re.sub(rf"kf_{tag}_\d+\b", "app", text)
            text = re.sub(rf"kf_{tag}_(\w+)", r"\1", text)
        return scrub_paths(text)


def public_command(command: str) -> str:
    """The command that found a failure, without the finder's machine: the binary's path and
    any other absolute path (a regressions or history directory) are no use to a maintainer."""
    command = re.sub(r"binary:\S+", "binary:PATH/TO/kalamdb-server", command)
    return re.sub(r"(?:^|(?<=[\s=]))/\S+", "PATH", command)
