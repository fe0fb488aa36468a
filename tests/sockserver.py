"""The harness's socket server, kept at this path for whatever runs it by name: it now lives in the package.

Usage: python tests/sockserver.py PATH [--mode 600] [--no-unlink] [--echo] [--retry SECONDS]
(see ``socktui.demo.sockserver``).
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

if __name__ == "__main__":
    target = Path(__file__).resolve().parent.parent / "src" / "socktui" / "demo" / "sockserver.py"
    sys.argv[0] = str(target)
    runpy.run_path(str(target), run_name="__main__")
