"""jaxcca: exact, jittable, vmappable and differentiable CCA-family similarity."""

from jaxcca._cca import cca, cca_distance, cca_similarity
from jaxcca._pwcca import pwcca, pwcca_distance, pwcca_similarity
from jaxcca._results import CCAResult, PWCCAResult, SVCCAResult
from jaxcca._svcca import svcca, svcca_distance, svcca_similarity

__version__ = "0.1.0"

__all__ = [
    "CCAResult",
    "PWCCAResult",
    "SVCCAResult",
    "__version__",
    "cca",
    "cca_distance",
    "cca_similarity",
    "pwcca",
    "pwcca_distance",
    "pwcca_similarity",
    "svcca",
    "svcca_distance",
    "svcca_similarity",
]
