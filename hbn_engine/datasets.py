"""Small real image datasets that ship inside PyPI packages, for offline tests and the demo.

* ``"animal_shapes"`` — the ``animal-shape-mnist`` package: 10,000 28x28 grayscale animal
  silhouettes in 10 classes (1,000 each), close in spirit to the paper's sketch data.
* ``"digits"`` — scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes).

Neither is a dependency of hbn_engine; install the one you need (``pip install
animal-shape-mnist`` or ``pip install scikit-learn``). Nothing is downloaded at run time.
"""
from __future__ import annotations

import gzip
import importlib
import importlib.util
import io
import os
import pickle
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["DATASETS", "Dataset", "load_dataset", "load_animal_shapes", "load_digits"]

DATASETS = ("animal_shapes", "digits")

ANIMAL_CLASSES = ("bear", "bird", "cat", "cow", "dog", "elephant", "giraffe", "horse", "sheep",
                  "zebra")


@dataclass(frozen=True)
class Dataset:
    """A fixed train/test split. Images are float32 (N, 1, H, W) in [0, 1]; labels int64 (N,)."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: tuple[str, ...]

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def torch(self) -> tuple[Any, Any, Any, Any]:
        """(x_train, y_train, x_test, y_test) as torch tensors (shares memory with the arrays)."""
        import torch  # noqa: PLC0415 (torch is optional for hbn_engine)

        return (torch.from_numpy(self.x_train), torch.from_numpy(self.y_train),
                torch.from_numpy(self.x_test), torch.from_numpy(self.y_test))


def _split(name: str, x: np.ndarray, y: np.ndarray, classes: tuple[str, ...],
           test_fraction: float, seed: int) -> Dataset:
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    # Stratified: the same share of every class goes to the test set. PCG64 streams are stable
    # across numpy versions, so a seed names one split forever.
    rng = np.random.default_rng(seed)
    test_idx, train_idx = [], []
    for c in range(len(classes)):
        idx = np.flatnonzero(y == c)
        idx = idx[rng.permutation(len(idx))]
        n_test = int(round(len(idx) * test_fraction))
        test_idx.append(idx[:n_test])
        train_idx.append(idx[n_test:])
    tr = np.sort(np.concatenate(train_idx))
    te = np.sort(np.concatenate(test_idx))
    # Mixed classes, so that a prefix of either set is a fair subset.
    tr = tr[rng.permutation(len(tr))]
    te = te[rng.permutation(len(te))]
    return Dataset(name, np.ascontiguousarray(x[tr]), np.ascontiguousarray(y[tr]),
                   np.ascontiguousarray(x[te]), np.ascontiguousarray(y[te]), classes)


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain numpy arrays and nothing else (a pickle can run arbitrary code)."""

    _ALLOWED = {"_reconstruct", "ndarray", "dtype", "scalar"}

    def find_class(self, module: str, name: str) -> Any:
        if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name in self._ALLOWED:
            # numpy 2 renamed numpy.core -> numpy._core; importing the old name warns.
            for mod in ("numpy._core.multiarray", "numpy.core.multiarray"):
                try:
                    return getattr(importlib.import_module(mod), name)
                except (ImportError, AttributeError):
                    continue
        if module == "numpy" and name in ("ndarray", "dtype"):
            return getattr(np, name)
        raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")


def _load_array(path: str) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        arr = _ArrayUnpickler(io.BytesIO(f.read())).load()
    if not isinstance(arr, np.ndarray):
        raise ValueError(f"{path}: expected a numpy array, got {type(arr).__name__}")
    return arr


def _animal_shape_dir() -> str:
    # The package has no __init__.py (a namespace package) and its loader imports tensorflow, so
    # locate the data files without importing any of its modules.
    spec = importlib.util.find_spec("animal_shape_mnist")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("dataset 'animal_shapes' needs the animal-shape-mnist package "
                          "(pip install animal-shape-mnist)")
    for root in spec.submodule_search_locations:
        d = os.path.join(root, "data", "Animal Shape")
        if os.path.isdir(d):
            return d
    raise FileNotFoundError("animal-shape-mnist is installed but its data directory is missing")


def load_animal_shapes(test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """The animal-shape-mnist silhouettes: 8,000 train / 2,000 test by default, (N, 1, 28, 28)."""
    d = _animal_shape_dir()
    x = _load_array(os.path.join(d, "animal_data_version_3.gz"))
    y = _load_array(os.path.join(d, "animal_label_version_3.gz"))
    if x.ndim != 3 or x.shape[1:] != (28, 28) or y.shape != (x.shape[0],):
        raise ValueError(f"unexpected animal-shape-mnist arrays: {x.shape}, {y.shape}")
    if y.min() < 0 or y.max() >= len(ANIMAL_CLASSES):
        raise ValueError("animal-shape-mnist labels out of range")
    xf = (x.astype(np.float32) / 255.0)[:, None, :, :]
    return _split("animal_shapes", xf, y.astype(np.int64), ANIMAL_CLASSES, test_fraction, seed)


def load_digits(test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """scikit-learn's 8x8 digits (values 0..16 scaled to [0, 1]), (N, 1, 8, 8)."""
    try:
        from sklearn.datasets import load_digits as sk_load  # noqa: PLC0415
    except ImportError as exc:
        raise ImportError("dataset 'digits' needs scikit-learn (pip install scikit-learn)") from exc
    bunch = sk_load()
    x = (np.asarray(bunch.images, dtype=np.float32) / 16.0)[:, None, :, :]
    y = np.asarray(bunch.target, dtype=np.int64)
    return _split("digits", x, y, tuple(str(i) for i in range(10)), test_fraction, seed)


def load_dataset(name: str = "animal_shapes", test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """Load one of :data:`DATASETS` with a fixed, stratified train/test split."""
    if name == "animal_shapes":
        return load_animal_shapes(test_fraction, seed)
    if name == "digits":
        return load_digits(test_fraction, seed)
    raise ValueError(f"unknown dataset {name!r}; choose from {DATASETS}")
