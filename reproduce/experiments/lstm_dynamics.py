"""PWCCA figure 6 (LSTM): bottom-up convergence in a language model.

A character-level LSTM on the embedded Shakespeare (``lstm_shakespeare``), or
a word-level one on PTB when ``--data-dir`` is given (``lstm_ptb``, preset
full). Every time step of every probe window is a sample. Claims as in
``dynamics``: bottom-up convergence, and PWCCA against mean CCA. Command:
``python -m reproduce all --only lstm_dynamics``; runtime quick ~2 min.
Outputs: ``lstm_dynamics/results.json``, ``lstm_dynamics/lstm_dynamics.png``.
"""

from __future__ import annotations

import pathlib

from reproduce.experiments import dynamics
from reproduce.experiments._common import save_results

TITLE = "Bottom-up convergence in an LSTM language model"
PAPER = "PWCCA (Morcos et al. 2018) figure 6 (LSTM)"


def run(out: pathlib.Path, *, preset: str, data_dir=None, log=print) -> dict:
    """Trains (or resumes) the LSTM; distances of every checkpoint to the final one."""
    config = "lstm_ptb" if data_dir is not None else "lstm_shakespeare"
    steps, metrics, acts, how = dynamics.train_and_read(
        out / "lstm_dynamics" / "network", config, preset, data_dir=data_dir, log=log
    )
    return save_results(
        out,
        "lstm_dynamics",
        {
            "preset": preset,
            "config": config,
            "seeds": [0],
            "steps": steps,
            "valid_loss": [metrics[str(s)]["probe_loss"] for s in steps],
            "reduction": how,
            "layers": list(acts),
            "distance_to_final": dynamics.distance_to_final(acts),
        },
    )


def claims(results: dict) -> list[dict]:
    """The bottom-up claims for the LSTM layers (the read-out is not an LSTM layer)."""
    lstm = {**results, "layers": [k for k in results["layers"] if k.startswith("lstm")]}
    return dynamics.bottom_up_claims(lstm, "lstm_dynamics", "fig6", "LSTM layers")


table = dynamics.table
figure = dynamics.figure
