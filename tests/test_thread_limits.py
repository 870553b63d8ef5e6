"""Thread counts (issue 11, item 2): a count above the cap is refused with a clear error, and on
any failure - including the operating system refusing to start a thread - the pool keeps its
old count and working threads, so the next run() computes (before: ``num_threads = 10**6``
left the count at 10**6 and the next run() deadlocked)."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import hbn_engine
from hbn_engine import _core

torch = pytest.importorskip("torch")
from hbn_engine import nn as hnn  # noqa: E402


@pytest.fixture(scope="module")
def small_model(tmp_path_factory) -> tuple[str, np.ndarray]:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, padding=1), hnn.FullBinConv2d(16, 32, 3, padding=1),
                              hnn.WeightBinConv2d(32, 8, 3, padding=1)).eval()
    path = tmp_path_factory.mktemp("threads") / "net.hbn"
    x = torch.randn(2, 3, 24, 24)
    hbn_engine.export(net, x[:1], str(path))
    return str(path), x.numpy()


def test_cap_is_documented_value() -> None:
    assert _core.MAX_THREADS == 1024


@pytest.mark.parametrize("bad", [10**6, 1025, 0, -3, 10**12, True, 2.0])
def test_model_refuses_bad_count_and_keeps_working(small_model, bad) -> None:
    path, x = small_model
    m = hbn_engine.load(path)
    m.num_threads = 2
    want = m.run(x)
    with pytest.raises(ValueError, match="num_threads must be an int from 1 to 1024"):
        m.num_threads = bad
    assert m.num_threads == 2
    np.testing.assert_array_equal(m.run(x), want)


def test_native_setter_enforces_the_cap(small_model) -> None:
    """The executor binding itself refuses (not only the Python property)."""
    path, x = small_model
    m = hbn_engine.load(path)
    m.num_threads = 3
    want = m.run(x)
    with pytest.raises(ValueError, match="between 1 and 1024, got 1000000"):
        m._ex.num_threads = 10**6
    assert m.num_threads == 3
    np.testing.assert_array_equal(m.run(x), want)
    m.num_threads = 1024  # the cap itself is accepted
    assert m.num_threads == 1024
    np.testing.assert_array_equal(m.run(x), want)
    m.num_threads = 1


def test_default_pool_refuses_bad_count() -> None:
    before = hbn_engine.get_num_threads()
    for bad in (10**6, 1025, 0):
        with pytest.raises(ValueError, match="1 to 1024"):
            hbn_engine.set_num_threads(bad)
        assert hbn_engine.get_num_threads() == before
    with pytest.raises(ValueError, match="between 1 and 1024"):
        _core.set_num_threads(5000)
    assert hbn_engine.get_num_threads() == before


# Runs in a child process: it lowers the process's address-space limit so that new threads
# cannot map their stacks, which makes std::thread's constructor fail part way through a
# resize; the limit is restored before the pool is used again.
_FAILED_START = textwrap.dedent("""
    import resource, sys
    import numpy as np
    import hbn_engine

    path, x_path = sys.argv[1], sys.argv[2]
    x = np.load(x_path)
    m = hbn_engine.load(path)
    m.num_threads = 2
    want = m.run(x)
    pages = int(open("/proc/self/statm").read().split()[0])
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    room = pages * resource.getpagesize() + (48 << 20)
    resource.setrlimit(resource.RLIMIT_AS, (room if hard == resource.RLIM_INFINITY else min(room, hard), hard))
    try:
        m.num_threads = 64
        failed = None
    except Exception as e:
        failed = type(e).__name__ + ": " + str(e)
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    print("error:", failed)
    assert failed is not None, "64 threads started under the address-space limit"
    assert m.num_threads == 2, m.num_threads
    np.testing.assert_array_equal(m.run(x), want)
    m.num_threads = 3
    np.testing.assert_array_equal(m.run(x), want)
    print("ok")
""")


def test_failed_thread_start_keeps_pool(small_model, tmp_path) -> None:
    path, x = small_model
    x_path = tmp_path / "x.npy"
    np.save(x_path, x)
    # A deadlocked pool would hang: the timeout turns that into a failure.
    # cwd outside the checkout, so the child imports the installed package, not the source tree.
    r = subprocess.run([sys.executable, "-c", _FAILED_START, path, str(x_path)], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ok" in r.stdout
    assert "error: RuntimeError" in r.stdout or "error: MemoryError" in r.stdout, r.stdout
