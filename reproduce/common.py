"""Shared pieces of the experiments: atomic writes, results files, figures."""

from __future__ import annotations

import json
import os
import pathlib
import tempfile


def atomic_write(path: pathlib.Path, text: str) -> None:
    """Writes ``text`` to ``path`` so that a reader never sees a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False) as f:
        f.write(text)
    os.replace(f.name, path)


def load_done(out: pathlib.Path, log=print) -> dict | None:
    """The finished results of an experiment in ``out``, or None (then run it)."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    if path.exists():
        log(f"  {path} exists: skipping (delete it to rerun)")
        return json.loads(path.read_text())
    return None


def save(out: pathlib.Path, results: dict) -> dict:
    """Writes ``out/results.json`` atomically (last, so that it marks completion)."""
    atomic_write(out / "results.json", json.dumps(results, indent=2))
    return results


def claim(text: str, measured: str, held: bool) -> dict:
    """One claim of a paper, what was measured, and whether it held on this run."""
    return {"claim": text, "measured": measured, "held": bool(held)}


def pyplot():
    """matplotlib.pyplot with the headless backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
