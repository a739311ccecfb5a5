"""Entry script for ``spark-submit``: runs one seglake job, exits with its status.

``make package`` copies this file to ``dist/seglake_submit.py``, beside the wheel and
``dist/seglake-pyfiles.zip`` (the code and its shipped ``conf/``), so that no checkout
is needed::

    spark-submit --master spark://host:7077 --jars <Delta jars> \\
        --py-files dist/seglake-pyfiles.zip dist/seglake_submit.py run --config my.yaml

It works as ``python -m seglake.submit <job> [options]`` too (the ``seglake`` console
script, :func:`seglake.cli.main`). It must not be named ``seglake.py``: the script's
folder comes first on ``sys.path`` and would hide the package.
"""

from __future__ import annotations

import sys

from seglake.cli import main

if __name__ == "__main__":
    sys.exit(main())
