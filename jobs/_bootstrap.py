"""Let ``spark-submit jobs/<job>.py`` import the project when it runs from a checkout.

Installed (``pip install seglake`` or ``--py-files seglake.zip``) nothing happens.
"""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
