"""jaxcca: exact, jittable, vmappable and differentiable CCA-family similarity."""

from importlib import metadata as _metadata

from jaxcca import losses, streaming
from jaxcca._cca import cca, cca_distance, cca_similarity
from jaxcca._cka import (
    cka,
    cka_distance,
    cka_similarity,
    minibatch_cka,
    minibatch_cka_finalize,
    minibatch_cka_init,
    minibatch_cka_merge,
    minibatch_cka_merge_across,
    minibatch_cka_update,
)
from jaxcca._compare import (
    accumulate_activations,
    accumulate_layers,
    capture_layers,
    compare,
    compare_activations,
    reduce_layer,
    similarity_matrix,
)
from jaxcca._dft import conv_to_neurons, dft_cca, dft_cca_distance, dft_cca_similarity
from jaxcca._pairwise import pairwise, symmetrize
from jaxcca._procrustes import (
    procrustes,
    procrustes_distance,
    procrustes_similarity,
)
from jaxcca._pwcca import pwcca, pwcca_distance, pwcca_similarity
from jaxcca._results import (
    BootstrapResult,
    CCAResult,
    CKAResult,
    Comparison,
    DFTCCAResult,
    LayerStatistics,
    MinibatchCKAState,
    PermutationResult,
    ProcrustesResult,
    PWCCAResult,
    SVCCAResult,
)
from jaxcca._stats import bootstrap, permutation_test
from jaxcca._svcca import svcca, svcca_distance, svcca_similarity
from jaxcca.plot import plot_similarity

try:
    __version__ = _metadata.version("jaxcca")
except _metadata.PackageNotFoundError:  # a source checkout that is not installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "losses",
    "streaming",
    "BootstrapResult",
    "CCAResult",
    "CKAResult",
    "Comparison",
    "LayerStatistics",
    "accumulate_activations",
    "accumulate_layers",
    "capture_layers",
    "compare",
    "compare_activations",
    "plot_similarity",
    "reduce_layer",
    "similarity_matrix",
    "DFTCCAResult",
    "MinibatchCKAState",
    "PWCCAResult",
    "PermutationResult",
    "ProcrustesResult",
    "SVCCAResult",
    "__version__",
    "bootstrap",
    "cca",
    "cca_distance",
    "cca_similarity",
    "cka",
    "cka_distance",
    "cka_similarity",
    "conv_to_neurons",
    "dft_cca",
    "dft_cca_distance",
    "dft_cca_similarity",
    "minibatch_cka",
    "minibatch_cka_finalize",
    "minibatch_cka_init",
    "minibatch_cka_merge",
    "minibatch_cka_merge_across",
    "minibatch_cka_update",
    "procrustes",
    "procrustes_distance",
    "procrustes_similarity",
    "pairwise",
    "permutation_test",
    "pwcca",
    "pwcca_distance",
    "pwcca_similarity",
    "svcca",
    "svcca_distance",
    "svcca_similarity",
    "symmetrize",
]
