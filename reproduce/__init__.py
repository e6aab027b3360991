"""Reproductions of the SVCCA / PWCCA papers' findings with Flax NNX models and jaxcca."""
