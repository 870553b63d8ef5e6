"""Packaging promises: the runtime needs numpy only, and dispatch is exposed."""
from __future__ import annotations

import subprocess
import sys

import pytest

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


def test_import_without_native_extension_says_how_to_build(tmp_path) -> None:
    """From a source tree without a build, the import names the missing extension and how to
    build it (not Python's misleading "partially initialized module / circular import")."""
    import shutil
    from pathlib import Path

    src = Path(hbn_engine.__file__).parent
    pkg = tmp_path / "hbn_engine"
    shutil.copytree(src, pkg, ignore=shutil.ignore_patterns("_core*", "__pycache__"))
    env = {k: v for k, v in __import__("os").environ.items() if k != "HBN_DEV_BUILD_DIR"}
    env["PYTHONPATH"] = str(tmp_path)
    proc = subprocess.run([sys.executable, "-c", "import hbn_engine"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "native extension hbn_engine._core is not built" in proc.stderr
    assert "pip install" in proc.stderr and "circular import" not in proc.stderr


def test_isa_paths_come_from_the_core() -> None:
    assert hbn_engine.isa_paths()[0] == "scalar"
    assert {"avxvnni", "avx512vnni", "dotprod"} <= set(hbn_engine.isa_paths())
    assert set(hbn_engine.supported_isas()) <= set(hbn_engine.isa_paths())
    with pytest.raises(ValueError, match="unknown ISA"):
        hbn_engine.set_isa("sse9")


@pytest.mark.parametrize("path", ["scalar", "avx2", "avxvnni", "avx512", "avx512vnni", "neon", "dotprod", "sse9"])
def test_force_isa_environment(tmp_path, path: str) -> None:
    """HBN_FORCE_ISA=<path> leaves exactly that path's features active (every family then takes
    its best row among them); an unknown or unsupported path fails the import, naming it."""
    code = ("import hbn_engine\n"
            "print(hbn_engine.active_isa())\n"
            "print(','.join(sorted(hbn_engine._core.active_features())))\n")
    env = dict(__import__("os").environ, HBN_FORCE_ISA=path)
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)
    if path in hbn_engine.supported_isas():
        assert proc.returncode == 0, proc.stderr[-2000:]
        active, features = proc.stdout.split("\n")[:2]
        assert active == path
        assert set(filter(None, features.split(","))) <= set(hbn_engine._core.supported_features())
        assert (features == "") == (path == "scalar")
    else:
        assert proc.returncode != 0 and f"HBN_FORCE_ISA={path}" in proc.stderr
