"""Offline data: images (digits, CIFAR-10) and text (Shakespeare, PTB, WikiText-2).

Nothing is ever downloaded.
"""

from reproduce.data.images import (
    Split,
    load_cifar10,
    load_digits_splits,
    load_image_splits,
    random_labels,
)
from reproduce.data.text import (
    TextCorpus,
    batchify,
    load_ptb,
    load_shakespeare,
    load_wikitext2,
    shakespeare_plays,
    split_ids,
)

__all__ = [
    "Split",
    "TextCorpus",
    "batchify",
    "load_cifar10",
    "load_digits_splits",
    "load_image_splits",
    "load_ptb",
    "load_shakespeare",
    "load_wikitext2",
    "random_labels",
    "shakespeare_plays",
    "split_ids",
]
