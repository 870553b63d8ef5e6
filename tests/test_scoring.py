"""Batch scoring on a real Dask LocalCluster of 2 worker processes: results equal the engine's
own, bad files are reported by name (skipped or fatal), and a worker killed mid-run loses and
duplicates nothing."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("distributed")
pq = pytest.importorskip("pyarrow.parquet")
Image = pytest.importorskip("PIL.Image")
from torch import nn  # noqa: E402

import dask.array as da  # noqa: E402

import hbn_engine  # noqa: E402
from hbn_engine import cli, runtime, scoring  # noqa: E402
from hbn_engine.nn import FullBinConv2d  # noqa: E402

from conftest import randomize_bn  # noqa: E402

TIMEOUT = 60  # seconds per scoring run: a hang fails the test instead of the CI job
SIDE = 16
LABELS = [f"class{i}" for i in range(6)]


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c0 = nn.Conv2d(1, 16, 3, padding=1)
        self.b1 = FullBinConv2d(16, 32, 3, 2, 1)
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.fc = nn.Linear(32 * 4, len(LABELS))

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.b1(self.c0(x))), 1))


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> str:
    torch.manual_seed(0)
    net = randomize_bn(_Net(), seed=1)
    net.class_names = LABELS
    path = str(tmp_path_factory.mktemp("scoring") / "net.hbn")
    hbn_engine.export(net, torch.randn(2, 1, SIDE, SIDE), path)
    return path


@pytest.fixture(scope="module")
def model(model_file) -> "hbn_engine.Model":
    return hbn_engine.load(model_file)


@pytest.fixture(scope="module")
def client():
    with scoring.open_client(workers=2, timeout=TIMEOUT) as c:
        c.wait_for_workers(2, timeout=TIMEOUT)
        yield c


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> tuple[str, dict[str, np.ndarray]]:
    """40 good greyscale PNGs (pixels known), one corrupt file, one of the wrong size."""
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(7)
    pixels = {}
    for i in range(40):
        a = rng.integers(0, 256, (SIDE, SIDE), dtype=np.uint8)
        Image.fromarray(a).save(folder / f"img{i:03d}.png")
        pixels[f"img{i:03d}.png"] = a
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n but then nothing useful")
    Image.fromarray(rng.integers(0, 256, (SIDE + 3, SIDE), dtype=np.uint8)).save(folder / "wrong_size.png")
    return str(folder), pixels


def _reference(model, pixels: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    names = sorted(pixels)
    x = np.stack([pixels[n] for n in names])[:, None].astype(np.float32) * np.float32(1 / 255)
    return dict(zip(names, model.run(x)))


def test_images_to_parquet_match_the_engine(model, client, images, tmp_path) -> None:
    folder, pixels = images
    out = tmp_path / "scores.parquet"
    s = scoring.score_files(model, folder, out, client=client, batch=4, top_k=3,
                            files_per_task=6, timeout=TIMEOUT)
    t = pq.read_table(out).to_pydict()
    assert s.images == len(t["name"]) == len(pixels)
    assert sorted(t["name"]) == sorted(pixels)  # every image once
    ref = _reference(model, pixels)
    for name, top, score, labels in zip(t["name"], t["top_class"], t["top_score"], t["top_label"]):
        # other batch sizes round differently (1e-7): compare scores, not near-tie orders
        np.testing.assert_allclose(score, ref[name][top], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(score, np.sort(ref[name])[::-1][:3], rtol=1e-5, atol=1e-6)
        assert labels == [LABELS[c] for c in top]
    assert [n for n, _ in s.failures] == ["corrupt.png", "wrong_size.png"]
    assert "the model takes 16x16" in dict(s.failures)["wrong_size.png"]
    assert s.workers == 2 and s.partitions == 7  # 42 files, 6 per task
    assert sum(s.partitions_by_pid.values()) == 7
    assert not [f for f in os.listdir(tmp_path) if "partial" in f]


def test_on_error_fail_names_the_file_and_writes_nothing(model, client, images, tmp_path) -> None:
    out = tmp_path / "scores.parquet"
    with pytest.raises(scoring.ScoringError, match=r"corrupt\.png|wrong_size\.png"):
        scoring.score_files(model, images[0], out, client=client, on_error="fail",
                            files_per_task=6, timeout=TIMEOUT)
    assert os.listdir(tmp_path) == []


def test_npy_shards_in_input_order(model, client, tmp_path, rng) -> None:
    folder = tmp_path / "shards"
    folder.mkdir()
    shards = [rng.standard_normal((n, 1, SIDE, SIDE), dtype=np.float32) for n in (5, 1, 7)]
    for i, a in enumerate(shards):
        np.save(folder / f"s{i}.npy", a)
    np.save(folder / "s1b.npy", shards[1][0])  # a single [C, H, W] image
    np.save(folder / "x_bad_shape.npy", np.zeros((2, 3, SIDE, SIDE), np.float32))
    nan = shards[0].copy()
    nan[0, 0, 0, 0] = np.nan
    np.save(folder / "x_nan.npy", nan)
    out = tmp_path / "y.npy"
    s = scoring.score_files(model, folder, out, client=client, timeout=TIMEOUT)
    y = np.load(out)
    names = (tmp_path / "y.names.txt").read_text().split()
    # one shard per task, each run as one batch: the same arithmetic as running it here
    np.testing.assert_array_equal(y, np.concatenate([model.run(a) for a in
                                                     (shards[0], shards[1], shards[1], shards[2])]))
    assert names == [f"s0.npy[{i}]" for i in range(5)] + ["s1.npy", "s1b.npy"] + \
        [f"s2.npy[{i}]" for i in range(7)]
    assert [n for n, _ in s.failures] == ["x_bad_shape.npy", "x_nan.npy"]
    assert "NaN" in dict(s.failures)["x_nan.npy"]


def test_dask_array_scoring(model, client, rng) -> None:
    x = rng.standard_normal((23, 1, SIDE, SIDE), dtype=np.float32)
    # chunked along channels and rows too: score_array joins everything but the batch axis
    dx = da.from_array(x, chunks=(6, 1, SIDE // 2, SIDE))
    y = scoring.score_array(model, dx, batch=4)
    assert y.shape == (23, len(LABELS)) and y.chunks[0] == (6, 6, 6, 5)
    # each chunk runs in batches of 4: the same runs here give the same bits
    want = [model.run(x[c + i:min(c + i + 4, c + n)]) for c, n in zip((0, 6, 12, 18), (6, 6, 6, 5))
            for i in range(0, n, 4)]
    np.testing.assert_array_equal(y.compute(), np.concatenate(want))
    with pytest.raises(ValueError, match=r"\[N, 1, 16, 16\]"):
        scoring.score_array(model, da.zeros((4, 1, 8, 8), dtype=np.float32))


def test_each_worker_holds_one_model_and_threads_fit_the_cores(model, client, images, tmp_path) -> None:
    scoring.score_files(model, images[0], tmp_path / "a.parquet", client=client,
                        files_per_task=4, timeout=TIMEOUT)
    digest = runtime._pickle_payload(model)[1]

    def live() -> list:
        from hbn_engine import runtime as rt

        return [k for k in rt._live_models.keys() if k[0] == digest]

    key = (digest, runtime._bit_passing_of(model))
    assert list(client.run(live).values()) == [[key]] * 2
    plan = scoring.engine_threads_plan(client)
    cores = scoring._cpu_count()
    assert list(plan.values()) == [max(1, cores // 2)]


def test_lost_worker_is_retried_without_loss_or_duplicates(client, tmp_path, rng) -> None:
    # 64x64 inputs: partitions of tens of ms, so the run is still going when a worker dies
    torch.manual_seed(2)
    path = str(tmp_path / "big.hbn")
    hbn_engine.export(randomize_bn(_Net(), seed=2), torch.randn(2, 1, 64, 64), path)
    model = hbn_engine.load(path)
    folder = tmp_path / "shards"
    folder.mkdir()
    n_shards, rows = 32, 48
    for i in range(n_shards):
        np.save(folder / f"s{i:02d}.npy", rng.standard_normal((rows, 1, 64, 64), dtype=np.float32))
    killed: list[int] = []
    in_flight: list = []
    pids = client.run(os.getpid)

    def kill_a_busy_worker(done: int, total: int, s: scoring.ScoreSummary) -> None:
        if killed:
            return
        busy = [(w, keys) for w, keys in client.processing().items() if keys]
        assert busy and done < total, "no partition in flight to lose"
        os.kill(pids[busy[0][0]], signal.SIGKILL)
        killed.append(pids[busy[0][0]])
        in_flight.extend(busy[0][1])

    out = tmp_path / "scores.parquet"
    s = scoring.score_files(model, folder, out, client=client, batch=16, progress=kill_a_busy_worker,
                            timeout=TIMEOUT)
    names = pq.read_table(out, columns=["name"]).column("name").to_pylist()
    expected = [f"s{i:02d}.npy[{j}]" for i in range(n_shards) for j in range(rows)]
    assert len(names) == s.images == n_shards * rows
    assert sorted(names) == sorted(expected)  # nothing lost, nothing twice
    assert not s.failures
    assert killed and sum(s.partitions_by_pid.values()) == n_shards
    # the scheduler took the killed worker's partition back (finished or not, its result died
    # with the process) and it was scored again elsewhere
    story = client.cluster.scheduler.story(*in_flight)
    assert any(t[1] in ("processing", "memory") and t[2] in ("released", "waiting", "queued",
                                                               "no-worker") for t in story), story
    client.wait_for_workers(2, timeout=TIMEOUT)  # the nanny restarts it, for the next tests
    assert killed[0] not in client.run(os.getpid).values()


def test_cli_score_against_a_scheduler_address(model_file, client, images, tmp_path, capsys) -> None:
    out = tmp_path / "cli.parquet"
    rc = cli.main(["score", model_file, images[0], "--out", str(out), "--scheduler",
                   client.scheduler.address, "--batch", "8", "--top-k", "2"])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "scored 40 images" in text and "on 2 workers" in text and "2 failed" in text
    assert "failed: corrupt.png" in text
    assert pq.read_table(out).num_rows == 40
    rc = cli.main(["score", model_file, images[0], "--out", str(tmp_path / "f.parquet"),
                   "--scheduler", client.scheduler.address, "--on-error", "fail"])
    assert rc == 1 and "bad input" in capsys.readouterr().err


def test_cli_score_bad_arguments(model_file, tmp_path, capsys) -> None:
    assert cli.main(["score", model_file, str(tmp_path / "nowhere"), "--out", "x.parquet",
                     "--workers", "1"]) == 1
    assert "no such file or folder" in capsys.readouterr().err
    assert cli.main(["score", model_file, str(tmp_path), "--out", "x.csv", "--workers", "1"]) == 1
    assert ".parquet or .npy" in capsys.readouterr().err


def test_partition_sizes() -> None:
    f = scoring._files_per_task
    assert f("image", 100_000, 32, 8) == 128  # capped at 4 batches
    assert f("image", 1_000, 32, 2) == 125  # about 4 tasks per worker
    assert f("image", 10, 32, 2) == 32  # never under one batch
    assert f("npy", 100, 32, 2) == 1


def test_runtime_import_does_not_import_dask(tmp_path) -> None:
    code = ("import sys, hbn_engine, hbn_engine.runtime, hbn_engine.cli\n"
            "hbn_engine.load, hbn_engine.Model\n"
            "bad = [m for m in ('dask', 'distributed', 'pyarrow', 'PIL') if m in sys.modules]\n"
            "assert not bad, bad\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_images_go_in_as_pixels_to_a_pixel_model(client, images, tmp_path) -> None:
    # A model exported with input_norm normalises pixels itself: the images must reach it
    # unscaled, exactly what run() gives on the uint8 pixels.
    folder, pixels = images
    torch.manual_seed(0)
    net = randomize_bn(_Net(), seed=1).eval()
    path = str(tmp_path / "pix.hbn")
    hbn_engine.export(net, torch.randn(2, 1, SIDE, SIDE), path, input_norm=([127.0], [64.0]))
    m = hbn_engine.load(path)
    out = tmp_path / "scores.npy"
    scoring.score_files(m, folder, out, client=client, batch=4, files_per_task=20,
                        timeout=TIMEOUT)
    got = np.load(out)
    names = (tmp_path / "scores.names.txt").read_text().split()
    want = m.run(np.stack([pixels[n] for n in names])[:, None])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
