"""Model pickling: a round trip gives the same answers and settings, a process loads each model
once, memory is released, and models reach spawned processes (multiprocessing)."""
from __future__ import annotations

import gc
import multiprocessing
import pickle
import weakref
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import hbn_engine  # noqa: E402
from hbn_engine import runtime  # noqa: E402
from hbn_engine.nn import FullBinConv2d  # noqa: E402

import _mp_child  # noqa: E402
from conftest import randomize_bn  # noqa: E402


class _Chain(nn.Module):
    """Float conv into two FullBinConvs: bit passing changes the plan (a packed value)."""

    def __init__(self, classes: int) -> None:
        super().__init__()
        self.c0 = nn.Conv2d(1, 16, 3, padding=1)
        self.b1 = FullBinConv2d(16, 64, 3, 1, 1)
        self.b2 = FullBinConv2d(64, 32, 3, 2, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.b2(self.b1(self.c0(x)))), 1))


def _export(path, classes: int = 7, seed: int = 0) -> str:
    torch.manual_seed(seed)
    net = randomize_bn(_Chain(classes), seed=seed)
    hbn_engine.export(net, torch.randn(2, 1, 12, 12), str(path))
    return str(path)


@pytest.fixture(scope="module")
def chain_file(tmp_path_factory) -> str:
    return _export(tmp_path_factory.mktemp("pickle") / "chain.hbn")


@pytest.fixture
def x(rng) -> np.ndarray:
    return rng.standard_normal((5, 1, 12, 12), dtype=np.float32)


@pytest.mark.parametrize("protocol", [2, pickle.DEFAULT_PROTOCOL, 5])
@pytest.mark.parametrize("bit_passing", [True, False])
def test_round_trip_same_answers_and_settings(chain_file, x, protocol, bit_passing) -> None:
    m = hbn_engine.load(chain_file, bit_passing=bit_passing)
    m.num_threads = 2
    assert bool(m.bit_passing_layers) == bit_passing  # the model exercises the setting
    r = pickle.loads(pickle.dumps(m, protocol=protocol))
    assert r is not m
    assert r.num_threads == 2
    assert r.metadata == m.metadata and r.layers == m.layers
    assert r.bit_passing_layers == m.bit_passing_layers
    assert r.input_is_bits == m.input_is_bits
    assert r.packed_copy_layers == m.packed_copy_layers
    np.testing.assert_array_equal(r.run(x), m.run(x))
    # an unpickled model pickles again (Dask moves it worker to worker) to the same object
    assert pickle.loads(pickle.dumps(r, protocol=protocol)) is r


def test_same_content_loads_once(chain_file, tmp_path) -> None:
    a = pickle.loads(pickle.dumps(hbn_engine.load(chain_file)))
    # the same bytes under another path are the same model: keyed by content, not by path
    copy = tmp_path / "copy.hbn"
    copy.write_bytes(Path(chain_file).read_bytes())
    b = pickle.loads(pickle.dumps(hbn_engine.load(copy)))
    assert a is b
    # another plan of the same file is another model
    c = pickle.loads(pickle.dumps(hbn_engine.load(chain_file, bit_passing=False)))
    assert c is not a and not c.bit_passing_layers
    # the settings travel: the receiver's model takes the sender's thread count
    sender = hbn_engine.load(chain_file)
    sender.num_threads = 3
    assert pickle.loads(pickle.dumps(sender)) is a and a.num_threads == 3


def test_cache_releases_models(tmp_path) -> None:
    files = [_export(tmp_path / f"m{i}.hbn", seed=i + 10) for i in range(runtime.PICKLE_CACHE_SIZE + 1)]
    first = pickle.loads(pickle.dumps(hbn_engine.load(files[0])))
    ref = weakref.ref(first)
    del first
    gc.collect()
    assert ref() is not None  # kept by the recent-models cache
    for f in files[1:]:  # newer models push it out of the bounded cache
        pickle.loads(pickle.dumps(hbn_engine.load(f)))
    gc.collect()
    assert ref() is None


def test_unpicklable_cases_are_clear(chain_file, tmp_path) -> None:
    data = Path(chain_file).read_bytes()
    with pytest.raises(TypeError, match="loaded from bytes"):
        pickle.dumps(hbn_engine.load(data))
    # a file overwritten by another model after loading is not silently shipped instead
    path = tmp_path / "moving.hbn"
    path.write_bytes(data)
    m = hbn_engine.load(path)
    _export(path, classes=3, seed=5)
    with pytest.raises(ValueError, match="changed since it was loaded"):
        pickle.dumps(m)
    # corrupted bytes in transit are refused before loading
    blob = bytearray(pickle.dumps(hbn_engine.load(chain_file), protocol=5))
    i = blob.find(b"HBN")  # inside the file bytes, after the pickle framing
    assert i > 0
    blob[i + 40] ^= 0xFF
    with pytest.raises(pickle.UnpicklingError, match="sha256"):
        pickle.loads(bytes(blob))


def test_spawned_process_receives_model_once(chain_file, x) -> None:
    m = hbn_engine.load(chain_file)
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        # one task per copy: the worker unpickles the model twice and gets one object
        ids = pool.map(_mp_child.model_id, [m, m], chunksize=1)
        y = pool.apply(_mp_child.run_model, (m, x))
        ids2 = pool.map(_mp_child.model_id, [m], chunksize=1)
    assert ids[0] == ids[1] == ids2[0]
    np.testing.assert_array_equal(y, m.run(x))
