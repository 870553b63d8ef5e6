"""Scoring throughput: Dask LocalCluster (1 and 2 worker processes) vs the engine in one process.

    python benchmarks/bench_scoring.py [--images 512] [--rounds 3] [--arch sketchanet]

A zoo model (hybrid, exported with random weights: speed does not depend on them) scores a
folder of PNG images at batch 32. Compared, in interleaved rounds (medians reported):
  run loop          model.run over preloaded arrays, 2 engine threads (engine alone)
  decode + run      PNG decode + run in one process, 2 engine threads (the same work as scoring)
  dask 1 worker     hbn_engine.scoring.score_files, 1 process x 2 engine threads
  dask 2 workers    2 processes x 1 engine thread
Dask runs are timed warm (cluster started and model loaded by a first, untimed run); the
cluster start and the first run are reported beside. Not a pytest test: run it directly.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import numpy as np


def _export(arch: str, folder: str) -> str:
    import torch

    from hbn_engine import export, models

    torch.manual_seed(0)
    net = models.build(arch, "hybrid", num_classes=250 if arch == "sketchanet" else 1000).eval()
    path = os.path.join(folder, f"{arch}.hbn")
    export(net, torch.randn(1, *net.input_size), path)
    return path


def _images(model, folder: str, n: int) -> str:
    from PIL import Image

    c, h, w = model.input_shape
    out = os.path.join(folder, "images")
    os.makedirs(out)
    rng = np.random.default_rng(0)
    for i in range(n):
        a = rng.integers(0, 256, (h, w) if c == 1 else (h, w, 3), dtype=np.uint8)
        Image.fromarray(a).save(os.path.join(out, f"{i:06d}.png"))
    return out


def _run_loop(model, x: np.ndarray, batch: int) -> float:
    t = time.perf_counter()
    for i in range(0, len(x), batch):
        model.run(x[i:i + batch])
    return time.perf_counter() - t


def _decode_run_loop(model, files: list[str], batch: int) -> float:
    from hbn_engine.scoring import _read_image

    t = time.perf_counter()
    for i in range(0, len(files), batch):
        model.run(np.stack([_read_image(f, model.input_shape) for f in files[i:i + batch]]))
    return time.perf_counter() - t


def _dask(model, folder: str, out: str, workers: int, batch: int) -> tuple[float, float, float]:
    """(cluster start s, first run s, warm run s)"""
    from hbn_engine import scoring

    t = time.perf_counter()
    with scoring.open_client(workers=workers) as client:
        client.wait_for_workers(workers)
        start = time.perf_counter() - t
        first = scoring.score_files(model, folder, out, client=client, batch=batch).seconds
        warm = scoring.score_files(model, folder, out, client=client, batch=batch).seconds
    return start, first, warm


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="sketchanet")
    p.add_argument("--images", type=int, default=512)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()

    import hbn_engine

    with tempfile.TemporaryDirectory() as tmp:
        model = hbn_engine.load(_export(args.arch, tmp))
        folder = _images(model, tmp, args.images)
        files = sorted(os.path.join(folder, f) for f in os.listdir(folder))
        x = np.random.default_rng(1).random((args.images, *model.input_shape), dtype=np.float32)
        out = os.path.join(tmp, "scores.parquet")
        model.num_threads = 2
        _run_loop(model, x[:args.batch * 2], args.batch)  # plan the batch sizes once
        times: dict[str, list[float]] = {}
        extra: dict[str, list[tuple[float, float]]] = {}
        for r in range(args.rounds):
            model.num_threads = 2
            times.setdefault("run loop, 2 threads", []).append(_run_loop(model, x, args.batch))
            times.setdefault("decode + run, 2 threads", []).append(
                _decode_run_loop(model, files, args.batch))
            for w in (1, 2):
                start, first, warm = _dask(model, folder, out, w, args.batch)
                times.setdefault(f"dask, {w} worker{'s' * (w > 1)}", []).append(warm)
                extra.setdefault(f"dask, {w} worker{'s' * (w > 1)}", []).append((start, first))
            print(f"round {r + 1}/{args.rounds} done", flush=True)

    n = args.images
    base = statistics.median(times["run loop, 2 threads"]) / n
    print(f"\n{args.arch} hybrid, {n} PNG images {model.input_shape}, batch {args.batch}, "
          f"{os.cpu_count()} cores, medians of {args.rounds} interleaved rounds")
    print(f"{'setting':<26} {'images/s':>9} {'ms/image':>9} {'vs run loop':>12}  cluster start / first run")
    for name, ts in times.items():
        per = statistics.median(ts) / n
        more = ""
        if name in extra:
            s = statistics.median(e[0] for e in extra[name])
            f = statistics.median(e[1] for e in extra[name])
            more = f"  {s:.1f} s / {f:.2f} s"
        print(f"{name:<26} {1 / per:>9.1f} {per * 1e3:>9.2f} {(per - base) * 1e3:>+10.2f}ms{more}")


if __name__ == "__main__":
    main()
