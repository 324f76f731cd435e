"""`python -m kalamfuzz.sim CONFIG.toml`: run the embedded target like kalamdb-server."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
