"""The contract between a loaded model and its file (docs/embedding.md, "Load memory and time").

`load(path)` maps the file and, for a format-version-2 file, runs on the weights stored in their
kernels' layout in place: they are read from the mapping for the model's life (that is how two
processes share them). So the file must not be rewritten in place while loaded, exactly like a
TFLite model's: the exporter replaces files by rename, which leaves a loaded model on the old
contents. `load(path, copy=True)` (or `load(bytes)`) keeps a private copy instead, which nothing
done to the file can reach; so does a mapped version-1 file, whose weights are all repacked at
load (run() then reads no model byte at all)."""
from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import hbn_engine  # noqa: E402
from hbn_engine import models  # noqa: E402

# Run in a child: a read of a truncated mapping is SIGBUS, which would kill the test runner.
_TRUNCATE = r"""
import sys, numpy as np, hbn_engine
path, x_path, how = sys.argv[1], sys.argv[2], sys.argv[3]
x = np.load(x_path)
m = hbn_engine.load(path, copy=how == "copy")
print("in place", m.in_place_bytes, flush=True)
want = m.run(x)
open(path, "wb").close()            # truncated in place, as open(path, "wb") does first
got = m.run(x)
with open(path, "wb") as f:         # and rewritten with other bytes of another size
    f.write(b"\0" * 100)
again = m.run(x)
assert np.array_equal(want, got) and np.array_equal(want, again)
print("ok")
"""


def _truncate_in_child(tmp_path, net, x, how: str, **export_args) -> subprocess.CompletedProcess:
    path = tmp_path / "m.hbn"
    hbn_engine.export(net, x[:1], str(path), **export_args)
    x_path = tmp_path / "x.npy"
    np.save(x_path, x.numpy())
    return subprocess.run([sys.executable, "-c", _TRUNCATE, str(path), str(x_path), how],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    net = models.sketchanet(variant="hybrid", num_classes=10).eval()
    x = torch.randn(2, *net.input_size)
    d = tmp_path_factory.mktemp("mapped")
    return net, x, d


def test_copy_load_survives_truncation_of_the_file(exported, tmp_path) -> None:
    net, x, _ = exported
    r = _truncate_in_child(tmp_path, net, x, "copy")
    assert r.returncode == 0, f"exit {r.returncode}: {r.stdout}{r.stderr}"
    assert "ok" in r.stdout


def test_mapped_v1_file_is_never_read_after_load(exported, tmp_path) -> None:
    net, x, _ = exported
    r = _truncate_in_child(tmp_path, net, x, "map", format_version=1)
    assert r.returncode == 0, f"exit {r.returncode}: {r.stdout}{r.stderr}"
    assert "in place 0" in r.stdout and "ok" in r.stdout


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SIGBUS on a truncated mapping: Linux")
def test_mapped_v2_weights_are_read_in_place(exported, tmp_path) -> None:
    # The other side of the contract: the weights really are read from the mapping at run time
    # (not copied), so truncating the file under a loaded model is what the docs say it is.
    net, x, _ = exported
    r = _truncate_in_child(tmp_path, net, x, "map")
    in_place = int(r.stdout.split("in place ")[1].split()[0])
    assert in_place > 0
    assert r.returncode == -signal.SIGBUS, f"exit {r.returncode}: {r.stdout}{r.stderr}"


def test_reexport_to_the_same_path_keeps_the_loaded_model(exported, tmp_path) -> None:
    net, x, _ = exported
    path = tmp_path / "m.hbn"
    hbn_engine.export(net, x[:1], str(path))
    old = hbn_engine.load(path)
    assert old.in_place_bytes > 0  # weights read from the mapping of the old file
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
