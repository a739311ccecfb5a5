"""The files seglake ships, wherever it runs from: the default config, segment maps and
rules, source mappings, the cluster labels example and ``log4j2.properties``.

Their one source is the checkout's top-level ``conf/`` (DESIGN.md). The wheel and
``dist/seglake-pyfiles.zip`` carry that folder as package data, ``seglake/conf``
(``pyproject.toml`` maps the package ``seglake.conf`` to ``conf/``). Run from a checkout
(or an editable install) seglake reads the checkout's ``conf/``; installed, the package
data through :mod:`importlib.resources`, which reads inside a zip on ``sys.path`` too.

A file named in the config or on the command line (``rfm.rules: conf/segments/rules.yaml``,
``--config``, ``--mapping``) is looked up in the working directory first; a relative
``conf/...`` path that is not there is the shipped file (:func:`find`).
"""

from __future__ import annotations

import atexit
import contextlib
import sys
from functools import cache
from importlib import resources
from pathlib import Path, PurePosixPath

if sys.version_info >= (3, 11):
    from importlib.resources.abc import Traversable
else:  # pragma: no cover - Python 3.10
    from importlib.abc import Traversable

__all__ = ["CHECKOUT_ROOT", "Traversable", "conf_dir", "conf_file", "conf_path", "find", "shown", "stem"]

PACKAGED = "seglake:"  # how messages and ops/runs name a packaged file: seglake:conf/segments/default.yaml


def _checkout_root() -> Path | None:
    """The checkout seglake is imported from (``seglake/`` beside ``pyproject.toml`` and ``conf/``), if any."""
    root = Path(__file__).resolve().parent.parent
    if (root / "pyproject.toml").is_file() and (root / "conf" / "local.yaml").is_file():
        return root
    return None


CHECKOUT_ROOT = _checkout_root()


def _packaged_conf() -> Traversable:
    return resources.files("seglake") / "conf"


def conf_dir() -> Traversable:
    """The shipped ``conf`` folder: the checkout's, else the installed package data."""
    if CHECKOUT_ROOT is not None:
        return CHECKOUT_ROOT / "conf"
    packaged = _packaged_conf()
    if not packaged.is_dir():
        raise RuntimeError(
            f"seglake's shipped configuration is missing ({packaged}): seglake runs neither from a checkout "
            "nor from a package built with its conf/ (reinstall the wheel, or rebuild it with `make package`)"
        )
    return packaged


def conf_file(relative: str) -> Traversable:
    """``relative`` (``local.yaml``, ``segments/default.yaml``) in the shipped ``conf`` folder."""
    node = conf_dir()
    for part in PurePosixPath(relative).parts:
        node = node / part
    return node


_extracted = contextlib.ExitStack()
atexit.register(_extracted.close)


@cache
def conf_path(relative: str) -> Path | None:
    """A real file path of a shipped file, for readers outside Python (log4j in the JVM);
    None when it is not shipped. A file inside a zip is extracted to a temporary file
    that lives until the interpreter exits."""
    resource = conf_file(relative)
    if not resource.is_file():
        return None
    return Path(_extracted.enter_context(resources.as_file(resource)))


def find(setting: str) -> Path | Traversable:
    """A file named in the config or on the command line.

    An absolute path, or a relative one that exists in the working directory, is that
    file. A relative ``conf/...`` path that does not is the shipped file of that name
    (the checkout's ``conf/``, or the package data when installed) if there is one.
    Otherwise the path as given, so that its reader says it is missing.
    """
    path = Path(setting).expanduser()
    if path.is_absolute() or path.exists():
        return path
    parts = path.parts
    if len(parts) > 1 and parts[0] == "conf":
        shipped = conf_file("/".join(parts[1:]))
        if shipped.is_file():
            return shipped
    return path


def shown(file: Path | Traversable) -> str:
    """How messages and ``ops/runs`` name a file: a checkout's file relative to the checkout
    (``conf/local.yaml``), a packaged one as ``seglake:conf/local.yaml``, any other as its path."""
    if isinstance(file, Path) and CHECKOUT_ROOT is not None:
        absolute = file.resolve() if file.exists() else file.absolute()
        if absolute.is_relative_to(CHECKOUT_ROOT):
            return absolute.relative_to(CHECKOUT_ROOT).as_posix()
        return str(file)
    text, packaged = str(file), str(_packaged_conf()).rstrip("/")
    if text.startswith(packaged + "/"):
        return f"{PACKAGED}conf/{text[len(packaged) + 1 :]}"
    return text


def stem(file: Path | Traversable) -> str:
    """The file name without its suffix (``default`` for ``segments/default.yaml``)."""
    return PurePosixPath(file.name).stem
