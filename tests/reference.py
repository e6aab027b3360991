"""Independent float64 NumPy references, written from the papers' formulas.

Nothing here shares code with jaxcca: canonical correlations come from
``scipy.linalg.subspace_angles``; PWCCA follows Morcos et al. 2018 section 2.2;
``svcca_convention_pwcca`` transcribes what google/svcca's ``compute_pwcca``
computes (symmetric inverse square roots of covariances, as its cca_core does),
in the samples x neurons layout.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sl


def centred(x):
    x = np.asarray(x, np.float64)
    return x - x.mean(0)


def canonical_correlations(x, y):
    """All min(d1, d2) canonical correlations, descending (full-rank inputs)."""
    angles = sl.subspace_angles(centred(x), centred(y))
    return np.sort(np.cos(angles))[::-1]


def mean_cca(x, y):
    return float(np.mean(canonical_correlations(x, y)))


def svcca(x, y, keep):
    """Top-k (int) or top-fraction-of-variance (float) PCs, then mean CCA."""

    def reduce(a):
        a = centred(a)
        u, s, _ = np.linalg.svd(a, full_matrices=False)
        if isinstance(keep, float):
            frac = np.cumsum(s**2) / np.sum(s**2)
            k = int(np.searchsorted(frac, keep) + 1)
        else:
            k = keep
        return u[:, :k] * s[:k]

    return mean_cca(reduce(x), reduce(y))


def _inv_sqrt(c):
    w, v = np.linalg.eigh(c)
    return (v / np.sqrt(w)) @ v.T


def _symmetric_cca(x, y):
    xc, yc = centred(x), centred(y)
    n = xc.shape[0]
    sxx, syy, sxy = xc.T @ xc / (n - 1), yc.T @ yc / (n - 1), xc.T @ yc / (n - 1)
    arr = _inv_sqrt(sxx) @ sxy @ _inv_sqrt(syy)
    u, s, vt = np.linalg.svd(arr)
    return u, s, vt


def pwcca_paper(x, y):
    """Morcos et al. 2018, sec. 2.2: h_i canonical variates of x, alpha_i = sum_j |<h_i, z_j>|."""
    xc = centred(x)
    n = xc.shape[0]
    sxx = xc.T @ xc / (n - 1)
    u, s, _ = _symmetric_cca(x, y)
    p = min(x.shape[1], y.shape[1])
    h = xc @ _inv_sqrt(sxx) @ u[:, :p]
    h, _ = np.linalg.qr(h)  # orthonormalise (they already are, up to scale)
    alpha = np.abs(h.T @ xc).sum(1)
    alpha /= alpha.sum()
    return float(np.sum(alpha * s[:p])), alpha, s[:p]


def svcca_convention_pwcca(x, y):
    """What google/svcca's compute_pwcca returns when x is the narrower layer."""
    x = np.asarray(x, np.float64)
    u, s, _ = _symmetric_cca(x, y)
    means = x.mean(0)
    dirns = (x - means) @ u + means[None, : u.shape[1]]  # column i gets neuron i's mean
    p_mat, _ = np.linalg.qr(dirns)
    weights = np.abs(p_mat.T @ x).sum(1)
    weights = weights / weights.sum()
    return float(np.sum(weights * s)), weights, s


def dft_cca(x, y):
    """DFT-CCA the plain way: full complex FFT grid, one complex CCA per frequency.

    Returns ``(rho, alpha)`` of shape ``(Hg, Wg, p)``: the correlations and the
    unnormalised projection weights ``sum_j |<h_i, z_j>|`` of x's directions.
    Spatial sizes that differ are cut to the common band ``|k| <= (min - 1) // 2``.
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)

    def band(size_x, size_y):
        if size_x == size_y:
            return np.arange(size_x), np.arange(size_x)
        b = (min(size_x, size_y) - 1) // 2
        signed = np.r_[0 : b + 1, -b:0]
        return signed % size_x, signed % size_y

    rx, ry = band(x.shape[1], y.shape[1])
    cx, cy = band(x.shape[2], y.shape[2])
    fx = np.fft.fft2(x, axes=(1, 2))[:, rx][:, :, cx]
    fy = np.fft.fft2(y, axes=(1, 2))[:, ry][:, :, cy]
    p = min(x.shape[3], y.shape[3])
    hg, wg = fx.shape[1:3]
    rho = np.zeros((hg, wg, p))
    alpha = np.zeros((hg, wg, p))
    for i in range(hg):
        for j in range(wg):
            zx = fx[:, i, j] - fx[:, i, j].mean(0)
            zy = fy[:, i, j] - fy[:, i, j].mean(0)
            qx, _ = np.linalg.qr(zx)
            qy, _ = np.linalg.qr(zy)
            u, s, _ = np.linalg.svd(qx.conj().T @ qy)
            rho[i, j] = s[:p]
            h = qx @ u[:, :p]
            alpha[i, j] = np.abs(h.conj().T @ zx).sum(1)
    return rho, alpha
