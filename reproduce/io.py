"""Atomic files: a reader sees a complete file or none, whatever kills the writer.

Every file is first written under a temporary name that starts with ``.tmp-``
(which no reader's pattern matches: readers list ``ckpt_*.npz``,
``step_*.npz``, ``results.json`` by strict patterns), then renamed.

For the interruption tests, ``REPRODUCE_KILL_DURING=KIND:NAME:N`` makes the
process SIGKILL itself halfway through its ``N``-th write of the file called
``NAME`` of kind ``KIND`` (``checkpoint``, ``activations``, ``metrics``),
leaving a truncated temporary file behind, as a power cut would.
"""

from __future__ import annotations

import io
import json
import os
import pathlib
import signal

import numpy as np

KILL_ENV = "REPRODUCE_KILL_DURING"
_writes: dict[str, int] = {}


def _kill_now(kind: str, name: str) -> bool:
    spec = os.environ.get(KILL_ENV)
    if not spec or not spec.startswith(f"{kind}:{name}:"):
        return False
    key = f"{kind}:{name}"
    _writes[key] = _writes.get(key, 0) + 1
    return _writes[key] == int(spec.rsplit(":", 1)[1])


def write_bytes(path: pathlib.Path, data: bytes, *, kind: str = "file") -> None:
    """Writes ``data`` to ``path`` atomically (temporary ``.tmp-`` name, then rename)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{path.name}.{os.getpid()}")
    with tmp.open("wb") as f:
        half = len(data) // 2
        f.write(data[:half])
        if _kill_now(kind, path.name):
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        f.write(data[half:])
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_text(path: pathlib.Path, text: str, *, kind: str = "file") -> None:
    """Writes ``text`` to ``path`` atomically."""
    write_bytes(path, text.encode(), kind=kind)


def write_json(path: pathlib.Path, obj, *, kind: str = "file") -> None:
    """Writes ``obj`` as indented JSON to ``path`` atomically."""
    write_text(path, json.dumps(obj, indent=2, default=_plain) + "\n", kind=kind)


def write_npz(path: pathlib.Path, arrays: dict, *, kind: str = "file") -> None:
    """Writes ``arrays`` as an ``.npz`` archive to ``path`` atomically."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    write_bytes(path, buf.getvalue(), kind=kind)


def _plain(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, pathlib.Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def pyplot():
    """matplotlib.pyplot with the headless backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
