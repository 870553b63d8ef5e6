"""Packaging promises: the runtime needs numpy only, and dispatch is exposed."""
from __future__ import annotations

import subprocess
import sys

import hbn_engine


def test_runtime_does_not_import_torch(tmp_path) -> None:
    code = ("import sys, hbn_engine\n"
            "hbn_engine.load, hbn_engine.Model, hbn_engine.FormatError, hbn_engine.format\n"
            "assert 'torch' not in sys.modules, 'the runtime imported torch'\n")
    # cwd away from the source tree, so the same package as this test run is imported
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_dispatch_reports_paths() -> None:
    paths = hbn_engine.supported_isas()
    assert paths[0] == "scalar" and hbn_engine.best_isa() in paths
    assert hbn_engine.active_isa() in paths
