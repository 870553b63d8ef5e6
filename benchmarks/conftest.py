"""Shared pieces for the pytest-benchmark suites (run with: pytest benchmarks/ [-k ...])."""
from __future__ import annotations

import pytest


# Benchmarks are opt-in by folder: the default test run (pyproject testpaths = tests) never
# collects them, and nothing here asserts a speed.


@pytest.fixture(scope="session")
def workdir(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("hbn_bench"))

