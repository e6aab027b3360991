"""vmap of every measure at realistic sizes, including gradients.

jaxlib 0.10's batched CPU LAPACK kernels can deadlock XLA's thread pool when two
run at once (see jaxcca/_linalg.py, sequential_batching_on_cpu). The case below
hung before the fix; it runs in a subprocess so that a regression fails with a
message instead of stalling the whole suite (the timeout is a hang guard, far
above the seconds the case takes, not a performance check).
"""

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np

import jaxcca

CASE = textwrap.dedent(
    """
    import jax, jax.numpy as jnp, jaxcca
    k1, k2 = jax.random.split(jax.random.key(0))
    x = jax.random.normal(k1, (2000, 64)); y = jax.random.normal(k2, (2000, 48))
    xs = jnp.stack([x, x + 0.1 * y[:, :1], 2 * x]); ys = jnp.stack([y, y, y])
    for f in (jaxcca.pwcca_similarity, jaxcca.svcca_similarity, jaxcca.cca_similarity):
        jax.block_until_ready(jax.jit(jax.vmap(f))(xs, ys))
        jax.block_until_ready(jax.jit(jax.vmap(jax.grad(f)))(xs, ys))
    print("ok")
    """
)


def test_vmapped_measures_do_not_hang_on_cpu():
    env = {"PATH": "/usr/bin:/bin", "JAX_PLATFORMS": "cpu"}
    env.update({k: v for k, v in os.environ.items() if k.startswith(("PYTHON", "VIRTUAL"))})
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    proc = subprocess.run(
        [sys.executable, "-c", CASE], capture_output=True, text=True, timeout=900, env=env
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().endswith("ok")


def test_nested_vmap_matches_loop():
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((2, 3, 50, 6))
    ys = rng.standard_normal((2, 3, 50, 4))
    nested = jax.vmap(jax.vmap(jaxcca.pwcca_similarity))(xs, ys)
    loop = jnp.array(
        [[jaxcca.pwcca_similarity(xs[i, j], ys[i, j]) for j in range(3)] for i in range(2)]
    )
    np.testing.assert_allclose(nested, loop, atol=1e-12)


def test_vmap_with_unbatched_argument():
    rng = np.random.default_rng(1)
    xs, y = rng.standard_normal((4, 60, 5)), rng.standard_normal((60, 3))
    batched = jax.vmap(jaxcca.cca_similarity, in_axes=(0, None))(xs, y)
    np.testing.assert_allclose(batched, [jaxcca.cca_similarity(x, y) for x in xs], atol=1e-12)
