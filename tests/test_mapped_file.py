"""A model is memory-mapped from its file: what happens to that file after load must not reach
run(). A re-export to the same path, or any in-place rewrite, truncates the file; a read of a
truncated mapping is SIGBUS, so run() must not read the model bytes at all after load, and the
exporter replaces files by rename instead of rewriting them in place."""
from __future__ import annotations

import os
import stat
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import hbn_engine  # noqa: E402
from hbn_engine import models  # noqa: E402

# Run in a child: if run() read a truncated mapping, SIGBUS would kill the test runner itself.
_TRUNCATE = r"""
import sys, numpy as np, hbn_engine
path, x_path = sys.argv[1], sys.argv[2]
x = np.load(x_path)
m = hbn_engine.load(path)
want = m.run(x)
open(path, "wb").close()            # truncated in place, as open(path, "wb") does first
got = m.run(x)
with open(path, "wb") as f:         # and rewritten with other bytes of another size
    f.write(b"\0" * 100)
again = m.run(x)
assert np.array_equal(want, got) and np.array_equal(want, again)
print("ok")
"""


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    net = models.sketchanet(variant="hybrid", num_classes=10).eval()
    x = torch.randn(2, *net.input_size)
    d = tmp_path_factory.mktemp("mapped")
    return net, x, d


def test_run_survives_truncation_of_the_loaded_file(exported, tmp_path) -> None:
    net, x, _ = exported
    path = tmp_path / "m.hbn"
    hbn_engine.export(net, x[:1], str(path))
    x_path = tmp_path / "x.npy"
    np.save(x_path, x.numpy())
    r = subprocess.run([sys.executable, "-c", _TRUNCATE, str(path), str(x_path)], cwd=tmp_path,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"exit {r.returncode}: {r.stdout}{r.stderr}"
    assert "ok" in r.stdout


def test_reexport_to_the_same_path_keeps_the_loaded_model(exported, tmp_path) -> None:
    net, x, _ = exported
    path = tmp_path / "m.hbn"
    hbn_engine.export(net, x[:1], str(path))
    old = hbn_engine.load(path)
    want = old.run(x.numpy())
    torch.manual_seed(1)
    other = models.sketchanet(variant="hybrid", num_classes=10).eval()
    hbn_engine.export(other, x[:1], str(path))
    np.testing.assert_array_equal(old.run(x.numpy()), want)
    new = hbn_engine.load(path)
    assert not np.array_equal(new.run(x.numpy()), want)
    # no temporary file left beside it, and the mode a plain open() would have given
    assert sorted(os.listdir(tmp_path)) == ["m.hbn"]
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~mask
