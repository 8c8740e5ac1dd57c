"""Make the repository's ``components`` and ``pipelines`` packages importable.

(No ``__init__.py`` here on purpose: it would make this folder the package ``pipelines``.)
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
