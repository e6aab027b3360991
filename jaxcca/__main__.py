"""Command line: ``python -m jaxcca compare A.npz B.npz --measure cka --out DIR``.

Compares every layer saved in ``A`` with every layer saved in ``B`` (or in
``A`` itself when ``B`` is left out), from any framework: each input is an
``.npz`` file or a folder of ``.npy`` files holding one array per layer, rows
are samples (``--layout neurons-by-samples`` for google/svcca's transposed
2-D arrays). An optional ``sample_ids`` array in both inputs is checked to be
identical, in the same order. Writes ``DIR/similarity.json`` (matrix, layer
names, measure, options, jaxcca version, p-values with ``--permutations``)
and ``DIR/similarity.png`` (the heat map). Bad input exits with one line
saying what to fix.
"""

from __future__ import annotations

import os

# jax 0.10 on CPU can deadlock in vmapped linear algebra with several OpenMP
# threads (README, known issues); must be set before jax is imported.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import pathlib  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402

SAMPLE_IDS = "sample_ids"
LAYOUTS = ("samples-by-neurons", "neurons-by-samples")


class InputError(Exception):
    """Bad input: the message says what to fix (printed on one line)."""


def load_layers(path: str) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` file or of a folder of ``.npy`` files, in file order."""
    p = pathlib.Path(path)
    if p.is_dir():
        files = sorted(p.glob("*.npy"))
        if not files:
            raise InputError(f"{path}: folder holds no .npy files (one array per layer).")
        return {f.stem: np.load(f, allow_pickle=False) for f in files}
    if not p.exists():
        raise InputError(f"{path}: no such file or folder.")
    if p.suffix != ".npz":
        raise InputError(f"{path}: expected an .npz file or a folder of .npy files.")
    with np.load(p, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _layer_shape(name: str, a: np.ndarray, path: str, layout: str) -> np.ndarray:
    if a.ndim not in (2, 3, 4):
        raise InputError(
            f"{path}: layer {name!r} has shape {a.shape} ({a.ndim}-D); each layer must be "
            "(samples, neurons), (samples, H, W, C) or (samples, tokens, features)."
        )
    if not np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.complexfloating):
        raise InputError(f"{path}: layer {name!r} has dtype {a.dtype}; save real numbers.")
    if layout == "neurons-by-samples" and a.ndim == 2:
        a = a.T
    return a


def prepare(
    path_a: str, path_b: str | None, *, layout: str, layers_a, layers_b
) -> tuple[dict, dict | None, int]:
    """Loads and checks both inputs; returns the selected layers and the sample count."""
    from jaxcca._compare import select_layers

    sides = [(path_a, load_layers(path_a), layers_a)]
    if path_b is not None:
        sides.append((path_b, load_layers(path_b), layers_b))
    out, ids, first = [], [], None
    for path, arrays, wanted in sides:
        ids.append(arrays.pop(SAMPLE_IDS, None))
        if not arrays:
            raise InputError(f"{path}: holds no layers (only {SAMPLE_IDS}).")
        unknown = [w for w in wanted or () if w not in arrays]
        if unknown:
            flag = "--layers-a" if path == path_a and len(out) == 0 else "--layers-b"
            raise InputError(
                f"{path}: unknown layer(s) {unknown} in {flag}; it has {list(arrays)}."
            )
        names = select_layers(list(arrays), wanted, what=path)
        chosen = {}
        for name in names:
            a = _layer_shape(name, arrays[name], path, layout)
            if first is None:
                first = (path, name, a.shape[0])
            elif a.shape[0] != first[2]:
                raise InputError(
                    f"{path}: layer {name!r} has {a.shape[0]} samples but {first[0]}: layer "
                    f"{first[1]!r} has {first[2]}; every layer needs the same samples as rows "
                    "(arrays saved as neurons x samples need --layout neurons-by-samples)."
                )
            chosen[name] = a
        out.append(chosen)
    if first is None:
        raise InputError(f"{path_a}: holds no layers.")
    n = first[2]
    for (path, _, _), sid in zip(sides, ids, strict=True):
        if sid is not None and len(sid) != n:
            raise InputError(f"{path}: {SAMPLE_IDS} has {len(sid)} entries but layers have {n}.")
    if len(ids) == 2 and (ids[0] is None) != (ids[1] is None):
        have = path_a if ids[0] is not None else path_b
        print(
            f"jaxcca compare: warning: only {have} has {SAMPLE_IDS}; the sample order is not "
            "checked.",
            file=sys.stderr,
        )
    if len(ids) == 2 and ids[0] is not None and ids[1] is not None:
        a, b = np.asarray(ids[0]).tolist(), np.asarray(ids[1]).tolist()
        if a != b:
            bad = next(i for i, (u, v) in enumerate(zip(a, b, strict=True)) if u != v)
            if sorted(a) == sorted(b):
                raise InputError(
                    f"{SAMPLE_IDS} differ: the same samples in a different order (first "
                    f"difference at row {bad}: {a[bad]!r} vs {b[bad]!r}); reorder the rows of "
                    f"{path_b} to match {path_a}."
                )
            common = len(set(a) & set(b))
            raise InputError(
                f"{SAMPLE_IDS} differ: {path_a} and {path_b} share {common} of {n} samples; "
                "save activations of the same inputs in the same order."
            )
    return out[0], (out[1] if path_b is not None else None), n


def _tokens(value: str):
    try:
        return int(value)
    except ValueError:
        return value


def _keep(value: str):
    return int(value) if value.isdigit() else float(value)


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m jaxcca`` argument parser."""
    from jaxcca._compare import CONV_MODES, MEASURES, TOKEN_MODES

    summary = (__doc__ or "").split("\n")[0]
    parser = argparse.ArgumentParser(prog="python -m jaxcca", description=summary)
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser(
        "compare",
        help="every saved layer of A against every saved layer of B",
        description="Layer-by-layer similarity of saved activations (.npz or folder of .npy).",
    )
    c.add_argument("a", help=".npz file or folder of .npy files (one array per layer)")
    c.add_argument("b", nargs="?", help="the same for the columns (default: A against itself)")
    c.add_argument("--measure", default="cka", choices=MEASURES)
    c.add_argument("--out", required=True, help="output folder")
    c.add_argument("--layout", default=LAYOUTS[0], choices=LAYOUTS, help="of 2-D arrays")
    c.add_argument("--layers-a", help="comma-separated layer names of A (default: all)")
    c.add_argument("--layers-b", help="comma-separated layer names of B (default: all)")
    c.add_argument("--conv", default="spatial_mean", choices=CONV_MODES)
    c.add_argument(
        "--tokens", default="mean", type=_tokens, help=f"{'|'.join(TOKEN_MODES)}|POSITION"
    )
    c.add_argument("--mask", help=".npy (samples, tokens) validity mask for sequence layers")
    c.add_argument("--batch-size", type=int, help="samples per batch (minibatch_cka's batch)")
    c.add_argument("--keep", type=_keep, help="svcca: variance fraction or number of directions")
    c.add_argument("--convention", choices=("paper", "svcca"), help="pwcca weights")
    c.add_argument("--epsilon", type=float, help="cca/svcca/pwcca relative ridge")
    c.add_argument("--kernel", choices=("linear", "rbf"), help="minibatch_cka kernel")
    c.add_argument("--threshold", type=float, help="minibatch_cka RBF relative bandwidth")
    c.add_argument("--biased", action="store_true", help="minibatch_cka: biased HSIC")
    c.add_argument("--permutations", type=int, default=0, help="permutation test draws per pair")
    c.add_argument("--seed", type=int, default=0, help="seed of the permutation test")
    c.add_argument("--annotate", action="store_true", help="write the values in the heat map")
    c.add_argument("--float32", action="store_true", help="accumulate in float32")
    return parser


def _options(args) -> dict:
    opts = {}
    for name in ("keep", "convention", "epsilon"):
        if getattr(args, name) is not None:
            opts[name] = getattr(args, name)
    if args.measure == "minibatch_cka":
        if args.kernel is not None:
            opts["kernel"] = args.kernel
        if args.threshold is not None:
            opts["threshold"] = args.threshold
        opts["debiased"] = not args.biased
    return opts


def _pvalues(acts_a, acts_b, args, options, n_permutations):
    """Permutation p-values of every pair (rows of B's layer shuffled)."""
    import jax

    import jaxcca

    mask = None if args.mask is None else np.load(args.mask)

    def reduce(v, k):
        return jaxcca.reduce_layer(v, name=k, conv=args.conv, tokens=args.tokens, mask=mask)

    xa = [reduce(v, k) for k, v in acts_a.items()]
    xb = xa if acts_b is None else [reduce(v, k) for k, v in acts_b.items()]
    key = jax.random.key(args.seed)
    out = np.zeros((len(xa), len(xb)))
    for i, x in enumerate(xa):
        for j, y in enumerate(xb):
            res = jaxcca.permutation_test(
                x,
                y,
                measure=args.measure,
                n_permutations=n_permutations,
                key=jax.random.fold_in(key, i * len(xb) + j),
                **options,
            )
            out[i, j] = float(res.p_value)
    return out


def run_compare(args, parser) -> pathlib.Path:
    """Runs ``compare`` and writes the JSON and the figure; returns the output folder."""
    if args.permutations < 0:
        parser.error("--permutations must be >= 0.")
    if args.permutations and args.measure == "minibatch_cka":
        parser.error("--permutations works with the exact measures, not minibatch_cka.")
    if args.batch_size is not None and args.batch_size < 1:
        parser.error("--batch-size must be >= 1.")
    split = lambda s: None if s is None else [t for t in s.split(",") if t]  # noqa: E731
    acts_a, acts_b, n = prepare(
        args.a,
        args.b,
        layout=args.layout,
        layers_a=split(args.layers_a),
        layers_b=split(args.layers_b),
    )
    import jax

    if not args.float32:
        jax.config.update("jax_enable_x64", True)
    import jaxcca

    options = _options(args)
    mask = None
    if args.mask is not None:
        mask = np.load(args.mask)
        if mask.shape[0] != n:
            raise InputError(f"{args.mask}: mask has {mask.shape[0]} rows but layers have {n}.")
    try:
        result = jaxcca.compare_activations(
            acts_a,
            acts_b,
            measure=args.measure,
            mask=mask,
            conv=args.conv,
            tokens=args.tokens,
            batch_size=args.batch_size,
            **options,
        )
        pvalues = None
        if args.permutations:
            pvalues = _pvalues(acts_a, acts_b, args, options, args.permutations)
    except (ValueError, TypeError) as e:
        raise InputError(str(e).replace("\n", " ")) from None
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    record = {
        "matrix": result.matrix.tolist(),
        "layers_a": list(result.layers_a),
        "layers_b": list(result.layers_b),
        "measure": result.measure,
        "options": {k: v for k, v in result.options.items()},
        "n_samples": result.n_samples,
        "inputs": [args.a, args.b if args.b is not None else args.a],
        "layout": args.layout,
        "n_permutations": args.permutations,
        "p_values": None if pvalues is None else pvalues.tolist(),
        "jaxcca_version": jaxcca.__version__,
    }
    tmp = out / ".similarity.json.tmp"
    tmp.write_text(json.dumps(record, indent=1))
    tmp.replace(out / "similarity.json")
    import matplotlib

    matplotlib.use("Agg")
    fig = jaxcca.plot_similarity(
        result,
        annotate=args.annotate,
        pvalues=pvalues,
        label_a=pathlib.Path(args.a).name,
        label_b=pathlib.Path(args.b if args.b is not None else args.a).name,
    )
    fig.savefig(out / ".similarity.tmp.png", dpi=120)
    (out / ".similarity.tmp.png").replace(out / "similarity.png")
    return out


def main(argv=None) -> int:
    """Entry point of ``python -m jaxcca``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        out = run_compare(args, parser)
    except InputError as e:
        print(f"jaxcca compare: error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {out / 'similarity.json'} and {out / 'similarity.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
