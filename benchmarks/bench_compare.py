"""Layer-by-layer comparison of two ResNet-18s: jaxcca.compare vs pytorch-cka's workload.

pytorch-cka's published anchor: linear CKA between all 18 layers of two ResNet-18s over
CIFAR-10 (10,000 images, batch 1000) in 1.16 s on one H100, retaining 183.5 MB. This
script reproduces the workload's shape on this machine with random weights and
CIFAR-shaped random inputs (N x 32 x 32 x 3, batch 1000), every layer pair, each
column in its own subprocess so that peak memory (ru_maxrss) is per column:

  baseline   imports, two models built, nothing run (the fixed cost of the process)
  forward    the two forward passes with every layer captured and reduced to its spatial
             mean, no similarity (the floor)
  jaxcca     jaxcca.accumulate_layers (one pass, one joint co-moment of all 36 layers'
             spatial-mean features, float64; one compiled step per batch: forward,
             capture, reduction, update) + similarity_matrix for linear CKA, then
             CCA, SVCCA, PWCCA and Procrustes from the same pass
  minibatch  measure="minibatch_cka" (linear, debiased, per-batch HSIC; --minibatch)
  pytorch-cka  cka.compute_cka on the same CIFAR ResNet-18 written in PyTorch (identity
             taps at the same 18 points; no torchvision needed) on the same CPU, only when torch and pytorch-cka are installed (pip install
             'jaxcca[benchmark]'); otherwise the column is skipped and says so

    python benchmarks/bench_compare.py [--n 10000] [--batch 1000] [--minibatch] [--repeat 2]

The jaxcca and pytorch-cka columns run back to back (``--repeat K``: K alternating
rounds), so that on a shared machine both see about the same load. Inputs are float32
on both sides (the models are float32; only jaxcca's co-moments are float64).

Conv layers are reduced to their spatial means (channels as neurons, Morcos et al. 2018),
so D = sum of widths = 3,914 per network and the joint co-moment is O(D^2) whatever N is.
pytorch-cka flattens conv maps and averages per-batch Gram-matrix HSIC estimates; the
two compute different (both legitimate) linear CKA estimates of the same layer pairs.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

COLUMNS = ("baseline", "forward", "jaxcca", "minibatch", "pytorch-cka")  # --column
MEASURES = ["cka", "cca", "svcca", "pwcca", "procrustes"]  # --measures


def resnet18(seed):
    """A CIFAR ResNet-18 in Flax NNX (3x3 stem, 4 stages x 2 basic blocks, 10 classes).

    Sows 18 layers as nnx.Intermediate: the stem, both convs of every block (after
    batch norm), and the logits.
    """
    import jax
    from flax import nnx

    class Block(nnx.Module):
        def __init__(self, cin, cout, stride, rngs):
            self.conv1 = nnx.Conv(cin, cout, (3, 3), strides=stride, use_bias=False, rngs=rngs)
            self.bn1 = nnx.BatchNorm(cout, rngs=rngs)
            self.conv2 = nnx.Conv(cout, cout, (3, 3), use_bias=False, rngs=rngs)
            self.bn2 = nnx.BatchNorm(cout, rngs=rngs)
            self.project = stride != 1 or cin != cout
            if self.project:
                self.proj = nnx.Conv(cin, cout, (1, 1), strides=stride, use_bias=False, rngs=rngs)
                self.bn_proj = nnx.BatchNorm(cout, rngs=rngs)

        def __call__(self, x):
            h = jax.nn.relu(self.bn1(self.conv1(x)))
            self.sow(nnx.Intermediate, "conv1", h)
            h = self.bn2(self.conv2(h))
            self.sow(nnx.Intermediate, "conv2", h)
            skip = self.bn_proj(self.proj(x)) if self.project else x
            return jax.nn.relu(h + skip)

    class ResNet18(nnx.Module):
        def __init__(self, rngs):
            self.conv1 = nnx.Conv(3, 64, (3, 3), use_bias=False, rngs=rngs)
            self.bn1 = nnx.BatchNorm(64, rngs=rngs)
            blocks, cin = [], 64
            for stage, cout in enumerate((64, 128, 256, 512)):
                for b in range(2):
                    stride = 2 if (stage > 0 and b == 0) else 1
                    blocks.append(Block(cin, cout, stride, rngs))
                    cin = cout
            self.blocks = nnx.List(blocks)
            self.fc = nnx.Linear(512, 10, rngs=rngs)

        def __call__(self, x):
            h = jax.nn.relu(self.bn1(self.conv1(x)))
            self.sow(nnx.Intermediate, "stem", h)
            for block in self.blocks:
                h = block(h)
            logits = self.fc(h.mean(axis=(1, 2)))
            self.sow(nnx.Intermediate, "fc", logits)
            return logits

    model = ResNet18(nnx.Rngs(seed))
    model.eval()  # batch norm with running statistics, as in evaluation
    return model


def torch_resnet18():
    """The same CIFAR ResNet-18 in PyTorch (NCHW), with identity taps at the same 18 points.

    pytorch-cka hooks module outputs, so every point the Flax model sows is an
    ``nn.Identity`` here: ``stem``, ``blocks.i.tap1`` / ``tap2`` and ``fc``.
    """
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.tap1, self.tap2 = nn.Identity(), nn.Identity()
            self.proj = None
            if stride != 1 or cin != cout:
                self.proj = nn.Sequential(
                    nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
                )

        def forward(self, x):
            h = self.tap1(torch.relu(self.bn1(self.conv1(x))))
            h = self.tap2(self.bn2(self.conv2(h)))
            return torch.relu(h + (x if self.proj is None else self.proj(x)))

    class ResNet18(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.stem = nn.Identity()
            blocks, cin = [], 64
            for stage, cout in enumerate((64, 128, 256, 512)):
                for b in range(2):
                    blocks.append(Block(cin, cout, 2 if (stage > 0 and b == 0) else 1))
                    cin = cout
            self.blocks = nn.Sequential(*blocks)
            self.fc = nn.Linear(512, 10)

        def forward(self, x):
            h = self.blocks(self.stem(torch.relu(self.bn1(self.conv1(x)))))
            return self.fc(h.mean(dim=(2, 3)))

    return ResNet18()


def batches(n, batch, seed=0):
    """CIFAR-shaped random images, generated batch by batch (never all in memory)."""
    import jax
    import jax.numpy as jnp

    key = jax.random.key(seed)
    for i, lo in enumerate(range(0, n, batch)):
        size = min(batch, n - lo)
        # float32, as CIFAR images and the PyTorch column are: under 64-bit mode an
        # unspecified dtype would be float64 and run the whole forward pass in float64.
        yield jax.random.normal(jax.random.fold_in(key, i), (size, 32, 32, 3), jnp.float32)


def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_column(name, n, batch):
    """Runs one column in this process; returns a dict of timings and peak memory."""
    import jax

    jax.config.update("jax_enable_x64", True)
    import jaxcca

    a, b = resnet18(0), resnet18(1)
    out = {"column": name}
    if name == "baseline":
        pass
    elif name == "forward":
        from flax import nnx

        fwd = nnx.jit(
            lambda m, x: [jaxcca.reduce_layer(v) for v in jaxcca.capture_layers(m, x).values()]
        )
        for x in batches(batch, batch):  # compile once
            jax.block_until_ready((fwd(a, x), fwd(b, x)))
        t0 = time.perf_counter()
        for x in batches(n, batch):
            jax.block_until_ready((fwd(a, x), fwd(b, x)))
        out["seconds"] = time.perf_counter() - t0
    elif name in ("jaxcca", "minibatch"):
        t0 = time.perf_counter()
        stats = jaxcca.accumulate_layers(
            a,
            b,
            batches(n, batch),
            exact=name == "jaxcca",
            minibatch_cka={"kernel": "linear", "debiased": True} if name == "minibatch" else None,
        )
        jax.block_until_ready(stats.moments if name == "jaxcca" else stats.minibatch)
        out["pass_seconds"] = time.perf_counter() - t0
        out["layers"] = [len(stats.layers_a), len(stats.layers_b)]
        out["D"] = [sum(stats.widths_a), sum(stats.widths_b)]
        measures = MEASURES if name == "jaxcca" else ("minibatch_cka",)
        for measure in measures:
            t1 = time.perf_counter()
            res = jaxcca.similarity_matrix(stats, measure=measure)
            out[f"{measure}_seconds"] = time.perf_counter() - t1
            out[f"{measure}_diag_mean"] = float(res.matrix.diagonal().mean())
            if measure == measures[0]:  # the timed work: one pass + the first measure
                out["timed_peak_mb"] = peak_mb()
        out["seconds"] = out["pass_seconds"] + out[f"{measures[0]}_seconds"]
    elif name == "pytorch-cka":
        try:
            import torch
            from cka import compute_cka
        except ImportError as e:
            return {"column": name, "skipped": f"not installed ({e.name})"}
        torch.set_num_threads(len(os.sched_getaffinity(0)))  # every core, as XLA uses
        torch.manual_seed(0)
        m1, m2 = torch_resnet18().eval(), torch_resnet18().eval()
        layers = ["stem"] + [f"blocks.{i}.{c}" for i in range(8) for c in ("tap1", "tap2")] + ["fc"]
        data = torch.utils.data.TensorDataset(torch.randn(n, 3, 32, 32), torch.zeros(n))
        loader = torch.utils.data.DataLoader(data, batch_size=batch)
        t0 = time.perf_counter()
        compute_cka(m1, m2, [loader], layers=layers, device="cpu", progress=False)
        out["seconds"] = time.perf_counter() - t0
    out["peak_mb"] = peak_mb()
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=10000, help="images (pytorch-cka's anchor: 10000)")
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--minibatch", action="store_true", help="also time minibatch_cka")
    p.add_argument(
        "--measures",
        default=",".join(MEASURES),
        help="measures the jaxcca column finalises from its one pass (cka first: it is timed)",
    )
    p.add_argument("--no-forward", action="store_true", help="skip the forward-only column")
    p.add_argument(
        "--repeat", type=int, default=1, help="alternating rounds of jaxcca and pytorch-cka"
    )
    p.add_argument("--column", choices=COLUMNS, help=argparse.SUPPRESS)
    args = p.parse_args()
    MEASURES[:] = args.measures.split(",")
    if args.column:
        print(json.dumps(run_column(args.column, args.n, args.batch)))
        return
    first = ["baseline"] + ([] if args.no_forward else ["forward"])
    first += ["minibatch"] if args.minibatch else []
    order = first + ["jaxcca", "pytorch-cka"] * max(args.repeat, 1)
    print(f"two ResNet-18s, {args.n} CIFAR-shaped images, batch {args.batch}, 18 x 18 layers")
    runs: list[dict] = []
    for col in order:
        cmd = [sys.executable, __file__, "--column", col, "--n", str(args.n)]
        cmd += ["--batch", str(args.batch), "--measures", args.measures]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            r = {"column": col, "skipped": proc.stderr.strip().splitlines()[-1]}
        else:
            r = json.loads(proc.stdout.strip().splitlines()[-1])
        runs.append(r)
        print(json.dumps(r), flush=True)
    base = runs[0]["peak_mb"]
    print(f"\n{'column':<12} {'seconds':>9} {'peak MB':>9} {'peak - baseline':>16}")
    for r in runs:
        col = r["column"]
        if "skipped" in r:
            print(f"{col:<12} skipped: {r['skipped']}")
            continue
        secs = f"{r['seconds']:.2f}" if "seconds" in r else "-"
        print(f"{col:<12} {secs:>9} {r['peak_mb']:>9.0f} {r['peak_mb'] - base:>16.0f}")
    fwd = next((r.get("seconds") for r in runs if r["column"] == "forward"), None)
    jax_runs = [r for r in runs if r["column"] == "jaxcca" and "pass_seconds" in r]
    torch_runs = [r for r in runs if r["column"] == "pytorch-cka"]
    for k, j in enumerate(jax_runs):
        floor = f" (forward alone {fwd:.2f} s)" if fwd is not None else ""
        print(
            f"\njaxcca round {k}: one pass {j['pass_seconds']:.2f} s{floor}; "
            f"joint D = {j['D']}; from the same pass: "
            + ", ".join(f"{m} {j[f'{m}_seconds']:.2f} s" for m in MEASURES)
        )
        t = torch_runs[k] if k < len(torch_runs) else {}
        if "seconds" in t:
            peak = j.get("timed_peak_mb", j["peak_mb"])  # before the extra measures
            print(
                f"round {k}, pytorch-cka / jaxcca (linear CKA, pass + finalisation): "
                f"time {t['seconds'] / j['seconds']:.2f}x, "
                f"peak memory {t['peak_mb'] / peak:.2f}x "
                f"(above the baseline process: "
                f"{(t['peak_mb'] - base) / max(peak - base, 1.0):.2f}x)"
            )
        elif "skipped" in t:
            print("pytorch-cka column skipped (torch and pytorch-cka not installed): no ratio.")
    if args.n != 10000:
        print(f"note: n = {args.n}, not the anchor's 10000; the pass scales linearly in n.")


if __name__ == "__main__":
    main()
