"""SVCCA theorem 1's practical point: DFT-CCA is CCA of the flattened conv layer, cheaply.

On a data set closed under circular translations, two translation-equivariant
layers (circular convolutions, ReLU) have block-diagonal covariances in the
Fourier basis, so ``jaxcca.dft_cca`` (``H*W`` small CCAs of ``C`` channels)
gives exactly the CCA of the ``H*W*C`` flattened neurons (``jaxcca.cca`` of
``conv_to_neurons(mode="flatten")``), at a fraction of the cost.

Claims:
* equal on translation-closed data: ``-log10 |DFT-CCA - CCA(flattened)|``
  above 3 (agreement to 3 decimals, float32); null: the same images without
  their translations (not closed: the theorem does not apply);
* cheaper: the median time of the compiled flattened CCA over that of the
  compiled DFT-CCA, above 1 (spread over timing repetitions).

Random two-layer circular convnets, each with its own seed. No config.
Command: ``python -m reproduce all --only dft_equivalence``. Outputs:
``dft_equivalence/results.json``, ``dft_equivalence/dft_equivalence.png``.
"""

from __future__ import annotations

import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np

import jaxcca
from reproduce import claims as C
from reproduce.configs import select
from reproduce.experiments._common import fmt, save_figure, save_results
from reproduce.io import pyplot

TITLE = "DFT-CCA equals CCA of the flattened conv layer on translation-closed data, cheaply"
PAPER = "SVCCA (Raghu et al. 2017) section 3, theorem 1"
SETTINGS = {
    "quick": {"base": 40, "size": 8, "channels": 6, "reps": 10},
    "full": {"base": 60, "size": 8, "channels": 8, "reps": 20},
    "smoke": {"base": 12, "size": 4, "channels": 3, "reps": 2},
}
SEEDS = (1300, 1301)


def circular_layer(key, x, channels: int):
    """ReLU of a random 3x3 circular convolution of ``x`` ``(N, H, W, Cin)``: equivariant."""
    cin = x.shape[-1]
    w = jax.random.normal(key, (3, 3, cin, channels)) / np.sqrt(9 * cin)
    xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="wrap")
    y = jax.lax.conv_general_dilated(
        xp, w, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    return jax.nn.relu(y)


def translations(images):
    """Every circular translation of every image: ``(N*H*W, H, W, C)``."""
    n, h, w, c = images.shape
    return jnp.concatenate(
        [jnp.roll(images, (i, j), axis=(1, 2)) for i in range(h) for j in range(w)]
    )


def _timed(fn, reps: int) -> list[float]:
    jax.block_until_ready(fn())
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t)
    return times


def run(out: pathlib.Path, *, preset: str, data_dir=None, log=print) -> dict:
    """Both measures on closed and non-closed data; compiled timings of both."""
    s = select({}, SETTINGS, preset)
    size, ch = s["size"], s["channels"]
    base = jax.random.normal(jax.random.key(1299), (s["base"], size, size, 1))
    found = {}
    dft = jax.jit(lambda a, b: jaxcca.dft_cca(a, b).similarity)
    flat = jax.jit(
        lambda a, b: jaxcca.cca_similarity(
            jaxcca.conv_to_neurons(a, mode="flatten"), jaxcca.conv_to_neurons(b, mode="flatten")
        )
    )
    for name, images in (("closed", translations(base)), ("not_closed", base)):
        if name == "not_closed":  # as many samples as the closed set: other random images
            images = jax.random.normal(jax.random.key(1298), (len(found["x"]), size, size, 1))
        x = circular_layer(jax.random.key(SEEDS[0]), images, ch)
        y = circular_layer(
            jax.random.key(SEEDS[1]), circular_layer(jax.random.key(7), images, ch), ch
        )
        found["x"] = x
        found[name] = {"dft_cca": float(dft(x, y)), "cca_flattened": float(flat(x, y))}
        if name == "closed":
            found["time_dft"] = _timed(lambda x=x, y=y: dft(x, y), s["reps"])
            found["time_flat"] = _timed(lambda x=x, y=y: flat(x, y), s["reps"])
    found.pop("x")
    log(f"  {found['closed']} / not closed {found['not_closed']}")
    return save_results(
        out,
        "dft_equivalence",
        {"preset": preset, "settings": s, "samples": s["base"] * size * size, **found},
    )


def _agreement(r: dict) -> float:
    return float(-np.log10(abs(r["dft_cca"] - r["cca_flattened"]) + 1e-12))


def claims(results: dict) -> list[dict]:
    """Equality on closed data (null: not closed) and the speed-up."""
    s = results["settings"]
    ratio = np.median(results["time_flat"]) / np.asarray(results["time_dft"])
    common = {"paper": "SVCCA", "figure": "thm1"}
    return [
        C.claim(
            id="dft_equivalence.equal_on_translation_closed_data",
            statement="on translation-closed data DFT-CCA equals the CCA of the flattened "
            "neurons (theorem 1)",
            statistic=f"-log10 |DFT-CCA - CCA of the {s['size']}x{s['size']}x{s['channels']} "
            "flattened neurons| (float32)",
            value=_agreement(results["closed"]),
            threshold=3.0,
            null=C.point_null(
                _agreement(results["not_closed"]), "the same on data not closed under translation"
            ),
            seeds=list(SEEDS),
            **common,
        ),
        C.claim(
            id="dft_equivalence.cheaper",
            statement="DFT-CCA computes it at a fraction of the cost",
            statistic="median time of the compiled flattened CCA / time of the compiled "
            "DFT-CCA, per repetition",
            value=float(ratio.mean()),
            spread=C.standard_error(ratio),
            threshold=1.0,
            null=C.point_null(1.0, "equal cost"),
            seeds="timing repetitions",
            **common,
        ),
    ]


def table(results: dict) -> str:
    """Both measures on both data sets, and the median times."""
    lines = ["| data | DFT-CCA | CCA of flattened neurons |", "| --- | --- | --- |"]
    for name in ("closed", "not_closed"):
        r = results[name]
        lines.append(f"| {name} | {r['dft_cca']:.6f} | {r['cca_flattened']:.6f} |")
    lines.append("")
    lines.append(
        f"Median time: DFT-CCA {fmt(1e3 * np.median(results['time_dft']))} ms, flattened CCA "
        f"{fmt(1e3 * np.median(results['time_flat']))} ms ({results['samples']} samples)."
    )
    return "\n".join(lines)


def figure(results: dict, path: pathlib.Path) -> None:
    """The two measures on both data sets, and the times."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(8, 3))
    names = ("closed", "not_closed")
    for i, key in enumerate(("dft_cca", "cca_flattened")):
        axes[0].bar(np.arange(2) + 0.4 * i, [results[n][key] for n in names], 0.4, label=key)
    axes[0].set_xticks(np.arange(2) + 0.2, ["translation-closed", "not closed"])
    axes[0].set_ylabel("similarity")
    axes[0].legend(fontsize=7)
    axes[1].bar([0, 1], [np.median(results["time_dft"]), np.median(results["time_flat"])])
    axes[1].set_xticks([0, 1], ["DFT-CCA", "flattened CCA"])
    axes[1].set_ylabel("seconds (compiled)")
    save_figure(fig, path)
