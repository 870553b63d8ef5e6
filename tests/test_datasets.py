"""Offline datasets shipped inside PyPI packages (hbn_engine.datasets)."""
from __future__ import annotations

import gzip
import hashlib
import importlib.util
import os
import pickle

import numpy as np
import pytest

from hbn_engine import datasets as D

needs_animals = pytest.mark.skipif(importlib.util.find_spec("animal_shape_mnist") is None,
                                   reason="animal-shape-mnist is not installed")


@pytest.fixture(scope="module")
def animals() -> D.Dataset:
    return D.load_dataset("animal_shapes")


def _hashes(x: np.ndarray) -> list[str]:
    return sorted(hashlib.sha1(np.ascontiguousarray(img).tobytes()).hexdigest() for img in x)


@needs_animals
def test_animal_shapes_layout(animals: D.Dataset) -> None:
    d = animals
    assert d.name == "animal_shapes" and d.classes == D.ANIMAL_CLASSES and d.num_classes == 10
    assert d.x_train.shape == (8000, 1, 28, 28) and d.x_test.shape == (2000, 1, 28, 28)
    assert d.input_shape == (1, 28, 28)
    assert d.x_train.dtype == np.float32 and d.y_train.dtype == np.int64
    assert d.x_train.flags.c_contiguous and d.x_test.flags.c_contiguous
    assert 0.0 <= d.x_train.min() and d.x_train.max() <= 1.0 and d.x_train.max() > 0.99
    assert np.bincount(d.y_train).tolist() == [800] * 10
    assert np.bincount(d.y_test).tolist() == [200] * 10
    assert len(set(d.y_test[:50].tolist())) > 5  # shuffled: a prefix is not a single class


@needs_animals
def test_animal_shapes_split_is_a_partition(animals: D.Dataset) -> None:
    raw = D._load_array(os.path.join(D._animal_shape_dir(), "animal_data_version_3.gz"))
    full = (raw.astype(np.float32) / 255.0)[:, None]
    both = np.concatenate([animals.x_train, animals.x_test])
    assert _hashes(both) == _hashes(full)


@needs_animals
def test_animal_shapes_split_is_fixed(animals: D.Dataset) -> None:
    again = D.load_animal_shapes()
    assert np.array_equal(again.x_test, animals.x_test)
    assert np.array_equal(again.y_train, animals.y_train)
    other = D.load_animal_shapes(seed=1)
    assert not np.array_equal(other.y_train, animals.y_train)
    assert np.bincount(other.y_test).tolist() == [200] * 10
    tenth = D.load_animal_shapes(test_fraction=0.1)
    assert tenth.x_test.shape[0] == 1000


@needs_animals
def test_torch_view(animals: D.Dataset) -> None:
    torch = pytest.importorskip("torch")
    xt, yt, xs, ys = animals.torch()
    assert xt.dtype == torch.float32 and yt.dtype == torch.int64
    assert xt.shape == (8000, 1, 28, 28) and ys.shape == (2000,)
    assert np.shares_memory(xt.numpy(), animals.x_train)


def test_digits() -> None:
    pytest.importorskip("sklearn")
    d = D.load_dataset("digits")
    assert d.x_train.shape == (1438, 1, 8, 8) and d.x_test.shape == (359, 1, 8, 8)
    assert d.x_train.dtype == np.float32 and 0.0 <= d.x_train.min() and d.x_train.max() == 1.0
    assert sorted(set(d.y_test.tolist())) == list(range(10))


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown dataset"):
        D.load_dataset("imagenet")
    with pytest.raises(ValueError, match="test_fraction"):
        D._split("x", np.zeros((4, 1, 2, 2), np.float32), np.array([0, 0, 1, 1]), ("a", "b"),
                 1.0, 0)


class _Evil:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, ("echo pwned",))


def test_unpickler_accepts_only_arrays(tmp_path) -> None:  # type: ignore[no-untyped-def]
    good = tmp_path / "good.gz"
    arr = np.arange(12, dtype=np.int64).reshape(3, 4)
    with gzip.open(good, "wb") as f:
        pickle.dump(arr, f)
    assert np.array_equal(D._load_array(str(good)), arr)
    evil = tmp_path / "evil.gz"
    with gzip.open(evil, "wb") as f:
        pickle.dump(_Evil(), f)
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        D._load_array(str(evil))
    listy = tmp_path / "list.gz"
    with gzip.open(listy, "wb") as f:
        pickle.dump([1, 2], f)
    with pytest.raises(ValueError, match="numpy array"):
        D._load_array(str(listy))
