"""PWCCA figures A2-A4: similarity of an LSTM's representations across sequence timesteps.

The representation of a layer at timestep tau is its hidden state at position
tau of every validation window, ``(windows, hidden)``. The paper compares
these across timesteps and finds that CCA detects the shared structure where
traditional metrics (cosine, Euclidean) do not. Claims: (A2) the PWCCA
similarity between distinct timesteps (mean over every pair) is above its
null (every timestep's windows shuffled independently); (A3) chance-corrected
(``(s - null mean) / (1 - null mean)``, each measure against its own null),
PWCCA finds more similarity across timesteps than cosine similarity; (A4) the
similarity CCA finds across timesteps is often absent in the hidden state: the
top layer's cell state (``LSTMLanguageModel.states``) shows more of it than its
hidden state, both chance-corrected against their own null. PWCCA symmetrised
(both weighting directions averaged).

Networks: the final LSTM of the shared group (``OUT/shared/lstm``, seeds 0,
1). Command: ``python -m reproduce all --only timesteps``; runtime quick ~20 s
CPU beyond the shared networks. Outputs: ``timesteps/results.json``,
``timesteps/timesteps.png``.
"""

from __future__ import annotations

import pathlib

import jax
import jax.numpy as jnp
import numpy as np

import jaxcca
from reproduce import claims as C
from reproduce import configs
from reproduce import data as datasets
from reproduce.configs import select
from reproduce.experiments import _common as K
from reproduce.io import pyplot

TITLE = "Similarity across sequence timesteps (CCA vs cosine and Euclidean)"
PAPER = "PWCCA (Morcos et al. 2018) figures A2-A4"
SETTINGS = {
    "quick": {"seeds": 2, "windows": 500, "positions": 8, "null_draws": 20},
    "full": {"seeds": 3, "windows": 3000, "positions": 12, "null_draws": 50},
    "smoke": {"seeds": 2, "windows": 40, "positions": 4, "null_draws": 4},
}


def validation_windows(config: str, preset: str, data_dir, n: int) -> np.ndarray:
    """The first ``n`` validation windows ``(n, seq_len)`` of the LSTM's corpus."""
    cfg = configs.get_config(config, preset)
    if cfg["data"] == "shakespeare":
        corpus = datasets.load_shakespeare(max_chars=cfg.get("max_chars"))
    elif cfg["data"] == "ptb":
        corpus = datasets.load_ptb(data_dir)
    else:
        corpus = datasets.load_wikitext2(data_dir)
    x, _ = datasets.batchify(corpus.valid, batch=1, seq_len=cfg["seq_len"])
    return np.asarray(x[:n])


def _cosine_similarity(a, b):
    na, nb = jnp.linalg.norm(a, axis=1), jnp.linalg.norm(b, axis=1)
    return jnp.mean(jnp.sum(a * b, axis=1) / jnp.maximum(na * nb, 1e-12))


def _euclidean_similarity(a, b):
    return 1.0 - K.euclidean_distance(a, b)


@jax.jit
def _baselines(stack):
    def pair(f):
        return jax.vmap(jax.vmap(f, in_axes=(None, 0)), in_axes=(0, None))(stack, stack)

    return pair(_cosine_similarity), pair(_euclidean_similarity)


def _pwcca_matrix(stack) -> np.ndarray:
    """``(P, P)`` symmetrised PWCCA similarity of the timesteps ``(P, n, d)``."""
    return np.asarray(jaxcca.symmetrize(jaxcca.pairwise(stack, measure="pwcca")))


def _matrices(stack):
    """``(P, P)`` similarity matrices of the timesteps ``(P, n, d)``: PWCCA, cosine, Euclidean."""
    cos, euc = (np.asarray(v) for v in _baselines(stack))
    return {"pwcca": _pwcca_matrix(stack), "cosine": cos, "euclidean": euc}


def run(out: pathlib.Path, *, preset: str, data_dir=None, log=print) -> dict:
    """Hidden states per timestep of the final shared LSTMs; similarity matrices and nulls."""
    s = select({}, SETTINGS, preset)
    ids = validation_windows(K.lstm_config(data_dir), preset, data_dir, s["windows"])
    positions = np.linspace(0, ids.shape[1] - 1, s["positions"]).round().astype(int).tolist()
    nets = []
    for m in K.shared_lstm_group(out, preset, s["seeds"], data_dir=data_dir, log=log):
        feats = m["model"].features(jnp.asarray(ids))
        layers = [k for k in feats if k.startswith("lstm")]
        per_layer = {}
        for k in layers:
            stack = jnp.asarray(np.asarray(feats[k])[:, positions, :].transpose(1, 0, 2))
            real = _matrices(stack)
            rng = np.random.default_rng(m["seed"])
            draws = {"pwcca": [], "cosine": [], "euclidean": []}
            for _ in range(s["null_draws"]):  # every timestep's windows shuffled on its own
                shuffled = jnp.stack([t[rng.permutation(t.shape[0])] for t in stack])
                mats = _matrices(shuffled)
                for name in draws:
                    draws[name].append(across(mats[name]))
            per_layer[k] = {
                **{name: v.tolist() for name, v in real.items()},
                "null": draws,
            }
        # A4: the top layer's cell state, PWCCA only (the claim reads nothing else)
        cell = np.asarray(m["model"].states(jnp.asarray(ids))[f"{layers[-1]}_cell"])
        stack = jnp.asarray(cell[:, positions, :].transpose(1, 0, 2))
        rng = np.random.default_rng(m["seed"] + 1000)
        per_layer[f"{layers[-1]}_cell"] = {
            "pwcca": _pwcca_matrix(stack).tolist(),
            "null": {
                "pwcca": [
                    across(
                        _pwcca_matrix(jnp.stack([t[rng.permutation(t.shape[0])] for t in stack]))
                    )
                    for _ in range(s["null_draws"])
                ]
            },
        }
        nets.append({"seed": m["seed"], "layers": layers, "similarity": per_layer})
        log(f"  LSTM seed {m['seed']}: timestep similarity of {len(layers)} layers")
    return K.save_results(
        out,
        "timesteps",
        {
            "preset": preset,
            "settings": s,
            "config": K.lstm_config(data_dir),
            "positions": positions,
            "networks": nets,
        },
    )


def across(mat) -> float:
    """Mean similarity of every pair of distinct timesteps (the off-diagonal of the matrix)."""
    mat = np.asarray(mat)
    return float(mat[~np.eye(len(mat), dtype=bool)].mean())


def adjusted(value: float, null_mean: float) -> float:
    """Chance-corrected similarity: 0 for the null's mean, 1 for identical."""
    return (value - null_mean) / max(1.0 - null_mean, 1e-12)


def chance_corrected_difference(sim_a: dict, sim_b: dict, a: str, b: str):
    """``a`` in ``sim_a`` minus ``b`` in ``sim_b``, each chance-corrected by its own null mean.

    Returns the value and its null: every shuffled-windows draw judged against
    the mean of the other draws, the same way for both sides.
    """
    na, nb = np.asarray(sim_a["null"][a]), np.asarray(sim_b["null"][b])
    value = adjusted(across(sim_a[a]), na.mean()) - adjusted(across(sim_b[b]), nb.mean())
    null = []
    for i in range(min(len(na), len(nb))):
        ra, rb = np.arange(len(na)) != i, np.arange(len(nb)) != i
        null.append(adjusted(na[i], na[ra].mean()) - adjusted(nb[i], nb[rb].mean()))
    return value, null


def claims(results: dict) -> list[dict]:
    """A2 (PWCCA finds similarity across timesteps), A3 (more than cosine), A4 (cell > hidden)."""
    nets = results["networks"]
    seeds = [x["seed"] for x in nets]
    top = nets[0]["layers"][-1]
    pw = [across(x["similarity"][top]["pwcca"]) for x in nets]
    pw_null = [v for x in nets for v in x["similarity"][top]["null"]["pwcca"]]
    diffs, null_diffs = [], []
    for x in nets:
        sim = x["similarity"][top]
        value, null = chance_corrected_difference(sim, sim, "pwcca", "cosine")
        diffs.append(value)
        null_diffs += null
    cells = [x["similarity"].get(f"{top}_cell") for x in nets]
    cell_diffs, cell_null = [], []
    for x, cell in zip(nets, cells, strict=True):
        if cell is not None:
            value, null = chance_corrected_difference(cell, x["similarity"][top], "pwcca", "pwcca")
            cell_diffs.append(value)
            cell_null += null
    what = f"mean over every pair of the timesteps {results['positions']} ({top})"
    common = {"paper": "PWCCA", "seeds": seeds}
    out = [
        C.claim(
            id="timesteps.cca_across_time",
            figure="figA2",
            statement="CCA finds similar representations across sequence timesteps",
            statistic=f"mean symmetrised PWCCA similarity, {what} (mean over seeds)",
            value=float(np.mean(pw)),
            spread=C.standard_error(pw),
            null=C.null_from(pw_null, "every timestep's windows shuffled independently"),
            **common,
        ),
        C.claim(
            id="timesteps.cca_beats_cosine",
            figure="figA3",
            statement="CCA finds similarity across timesteps where traditional metrics "
            "(cosine) do not",
            statistic=f"chance-corrected PWCCA minus chance-corrected cosine similarity, {what} "
            "(each against its own shuffled-windows null mean; mean over seeds)",
            value=float(np.mean(diffs)),
            spread=C.standard_error(diffs),
            null=C.null_from(null_diffs, "each shuffled-windows draw against the others' mean"),
            **common,
        ),
    ]
    if cell_diffs:
        out.append(
            C.claim(
                id="timesteps.hidden_state_misses",
                figure="figA4",
                statement="the similarity CCA finds across timesteps is often absent in the "
                "hidden state (present in the cell state)",
                statistic=f"chance-corrected PWCCA across timesteps of the cell state minus that "
                f"of the hidden state, {what} (each against its own shuffled-windows null mean; "
                "mean over seeds)",
                value=float(np.mean(cell_diffs)),
                spread=C.standard_error(cell_diffs),
                null=C.null_from(cell_null, "each shuffled-windows draw against the others' mean"),
                **common,
            )
        )
    return out


def table(results: dict) -> str:
    """Per seed and layer: mean similarity across distinct timesteps, and the nulls."""
    lines = [
        "| seed | layer | PWCCA (null) | cosine (null) | Euclidean (null) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for x in results["networks"]:
        for k, sim in x["similarity"].items():  # hidden states, then the top cell state
            cells = [
                f"{K.fmt(across(sim[m]))} ({K.fmt(np.mean(sim['null'][m]))})" if m in sim else "-"
                for m in ("pwcca", "cosine", "euclidean")
            ]
            lines.append(f"| {x['seed']} | {k} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def figure(results: dict, path: pathlib.Path) -> None:
    """Timestep-by-timestep similarity matrices of the first seed: PWCCA, cosine, Euclidean."""
    plt = pyplot()
    x = results["networks"][0]
    layers = list(x["similarity"])  # hidden states, then the top cell state (PWCCA only)
    fig, axes = plt.subplots(len(layers), 3, figsize=(10, 3 * len(layers)), squeeze=False)
    pos = results["positions"]
    for r, k in enumerate(layers):
        for c, m in enumerate(("pwcca", "cosine", "euclidean")):
            ax = axes[r, c]
            if m not in x["similarity"][k]:
                ax.axis("off")
                continue
            im = ax.imshow(np.asarray(x["similarity"][k][m]), vmin=0, vmax=1, cmap="viridis")
            ax.set_xticks(range(len(pos)), pos, fontsize=6)
            ax.set_yticks(range(len(pos)), pos, fontsize=6)
            ax.set_title(f"{k}: {m}", fontsize=8)
            fig.colorbar(im, ax=ax)
    K.save_figure(fig, path, dpi=100)
