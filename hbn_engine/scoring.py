"""Batch scoring on a Dask cluster: ``pip install "hbn_engine[dask]"`` (dask, distributed,
pyarrow, Pillow). Design and measured figures: docs/scoring.md.

    from hbn_engine import scoring
    with scoring.open_client(workers=2) as client:          # in-process LocalCluster
        summary = scoring.score_files(model, "images/", "scores.parquet", client=client)
    y = scoring.score_array(model, dask_images).compute()   # a Dask array in, a Dask array out

The model enters each graph once, as its file bytes (a plain tuple: the scheduler never loads
it and needs no hbn_engine); every worker process turns it into one loaded Model through the
runtime's pickle cache (hbn_engine.runtime._unpickle_model), so a worker loads a model once
however many partitions it scores, and a worker that dies is replaced and its partitions
recomputed by Dask from the same graph. Results come back to the client, which writes each
partition exactly once.
"""
from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Union

import numpy as np

try:
    import dask
    import dask.array as da
    import dask.distributed
    from distributed import Client, LocalCluster, as_completed
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise ImportError(f"hbn_engine.scoring needs the dask extra: pip install 'hbn_engine[dask]' "
                      f"({e})") from None

from hbn_engine import runtime
from hbn_engine.runtime import Model

__all__ = ["ScoringError", "ScoreSummary", "open_client", "list_inputs", "score_array",
           "score_files", "IMAGE_SUFFIXES"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
PathLike = Union[str, "os.PathLike[str]"]
# (file bytes, sha256, bit passing): what a graph carries instead of a Model (see module doc)
ModelPayload = tuple


class ScoringError(RuntimeError):
    """A run stopped by a bad input (``on_error="fail"``) or an unusable input set."""


@dataclass
class ScoreSummary:
    images: int                   # rows written
    failures: list[tuple[str, str]] = field(default_factory=list)   # (input name, reason)
    seconds: float = 0.0          # from submitting the graph to the last result written
    workers: int = 0
    engine_threads: dict[str, int] = field(default_factory=dict)    # host -> threads per run
    partitions: int = 0
    out: str = ""
    partitions_by_pid: dict[int, int] = field(default_factory=dict)  # worker process -> count

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else float("nan")


# --- cluster --------------------------------------------------------------------------------

@contextlib.contextmanager
def open_client(scheduler: Optional[str] = None, workers: Optional[int] = None,
                timeout: float = 60.0) -> Iterator[Client]:
    """A Client on ``scheduler`` (e.g. ``tcp://host:8786``), or on an in-process LocalCluster of
    ``workers`` single-threaded worker processes (default: one per core). One Dask thread per
    worker because a worker holds one model and a model runs one batch at a time; the engine
    threads of each run fill the cores instead (see engine_threads_plan)."""
    if scheduler is not None:
        if workers is not None:
            raise ValueError("workers applies to the local cluster, not to a scheduler address")
        with Client(scheduler, timeout=timeout) as client:
            yield client
        return
    n = _cpu_count() if workers is None else int(workers)
    if n < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    with LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster, timeout=timeout) as client:
        yield client


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _host_cores() -> tuple[str, int]:
    return socket.gethostname(), _cpu_count()


def engine_threads_plan(client: Client) -> dict[str, int]:
    """Engine threads per run on each host: the host's cores split between its workers. A
    worker runs one batch at a time (one model, one executor), so with one Dask thread per
    worker (open_client's local cluster) workers x engine threads is at most the cores. Workers
    started elsewhere with several Dask threads each run one batch at a time as well; their
    other threads only decode files meanwhile."""
    hosts = client.run(_host_cores)
    per_host: dict[str, list[int]] = {}
    for host, cores in hosts.values():
        per_host.setdefault(host, []).append(cores)
    return {host: max(1, cores[0] // len(cores)) for host, cores in per_host.items()}


def _threads_here(plan: dict[str, int]) -> int:
    # A replacement worker on a host the plan has not seen runs single-threaded: never more.
    return plan.get(socket.gethostname(), 1)


# --- the model on the workers ---------------------------------------------------------------

def _payload(model: Model) -> ModelPayload:
    data, digest = runtime._pickle_payload(model)
    return (data, digest, runtime._bit_passing_of(model))


def _worker_model(payload: ModelPayload, threads: int) -> Model:
    data, digest, bit_passing = payload
    return runtime._unpickle_model(data, digest, bit_passing, threads)


def _model_node(payload: ModelPayload) -> Any:
    # One graph node holds the model and every scoring task depends on it; named by the content
    # hash, so Dask does not hash the bytes again and two runs of one model share the key.
    return dask.delayed(payload, name=f"hbn-model-{payload[1][:32]}-{int(payload[2])}",
                        traverse=False)


@contextlib.contextmanager
def _graph_may_hold(payload: ModelPayload) -> Iterator[None]:
    # The model is in the graph once by design (see module doc): raise Dask's large-graph
    # warning threshold by the model's size instead of warning about it.
    limit = dask.config.get("distributed.admin.large-graph-warning-threshold")
    limit = dask.utils.parse_bytes(limit) + len(payload[0])
    with dask.config.set({"distributed.admin.large-graph-warning-threshold": limit}):
        yield


# --- Dask arrays ----------------------------------------------------------------------------

def _score_block(block: np.ndarray, payload: ModelPayload, plan: dict[str, int],
                 batch: int) -> np.ndarray:
    model = _worker_model(payload, _threads_here(plan))
    # .view: an array that came through pickle has an equal but distinct float32 dtype object,
    # which the native input check (identity) rejects.
    block = np.ascontiguousarray(block, dtype=np.float32).view(np.float32)
    return _run_batched(model, block, batch)


def _run_batched(model: Model, x: np.ndarray, batch: int) -> np.ndarray:
    out = np.empty((x.shape[0], *model.output_shape(1)[1:]), dtype=np.float32)
    for i in range(0, x.shape[0], batch):
        out[i:i + batch] = model.run(x[i:i + batch])
    return out


def score_array(model: Model, x: "da.Array", batch: int = 32,
                client: Optional[Client] = None) -> "da.Array":
    """Model outputs for a Dask array of NCHW images, chunked along the batch axis only (other
    axes are joined); each chunk is run in batches of ``batch``. Lazy: ``.compute()`` it.
    ``client`` (default: the current distributed client, if any) sizes the engine threads;
    without one each run uses one engine thread per Dask thread. The model is one node of the
    graph: a model over Dask's large-graph threshold (10 MB) makes ``compute`` warn once."""
    if not isinstance(x, da.Array):
        raise TypeError(f"x must be a dask.array.Array, got {type(x).__name__}")
    c, h, w = model.input_shape
    if x.ndim != 4 or tuple(x.shape[1:]) != (c, h, w):
        raise ValueError(f"x must be [N, {c}, {h}, {w}] to match the model, got {x.shape}")
    if x.dtype != np.float32:
        raise TypeError(f"x dtype must be float32, got {x.dtype}")
    batch = _positive(batch, "batch")
    if client is None:
        with contextlib.suppress(ValueError):
            from distributed import default_client

            client = default_client()
    plan = engine_threads_plan(client) if client is not None else {}
    x = x.rechunk({1: -1, 2: -1, 3: -1})
    payload = _payload(model)
    out_tail = model.output_shape(1)[1:]
    model_node = _model_node(payload)
    return da.map_blocks(_score_block, x, model_node, plan, batch, dtype=np.float32,
                         chunks=(x.chunks[0], *[(s,) for s in out_tail]),
                         drop_axis=[1, 2, 3][len(out_tail):] or None,
                         meta=np.empty((0,) * (1 + len(out_tail)), dtype=np.float32))


# --- files ----------------------------------------------------------------------------------

def list_inputs(source: Union[PathLike, Sequence[PathLike]]) -> tuple[str, list[str]]:
    """(kind, sorted files): a folder of images or of .npy shards, one file, or a list of files.
    kind is "image" or "npy"; a folder holding both kinds is an error (say which to score)."""
    if isinstance(source, (str, os.PathLike)):
        p = os.fspath(source)
        if os.path.isdir(p):
            files = [os.path.join(p, f) for f in sorted(os.listdir(p))
                     if f.lower().endswith(IMAGE_SUFFIXES + (".npy",))]
        elif os.path.isfile(p):
            files = [p]
        else:
            raise ScoringError(f"no such file or folder: {p}")
    else:
        files = [os.fspath(f) for f in source]
    kinds = {"npy" if f.lower().endswith(".npy") else "image" for f in files}
    if not files:
        raise ScoringError(f"no images ({', '.join(IMAGE_SUFFIXES)}) or .npy files in {source}")
    if len(kinds) > 1:
        raise ScoringError(f"{source} holds both images and .npy files: score one kind at a time")
    bad = [f for f in files if not f.lower().endswith(IMAGE_SUFFIXES + (".npy",))]
    if bad:
        raise ScoringError(f"not an image or .npy file: {bad[0]}")
    return kinds.pop(), files


def _read_image(path: str, shape: tuple[int, int, int], pixels: bool = False) -> np.ndarray:
    """The image as float32 [C, H, W]: pixels / 255, or the pixel values themselves for a
    model that takes pixels (exported with input_norm: it normalises them itself)."""
    from PIL import Image

    c, h, w = shape
    if c not in (1, 3):
        raise ValueError(f"the model takes {c} channels; images give 1 (grey) or 3 (RGB)")
    with Image.open(path) as im:
        a = np.asarray(im.convert("L" if c == 1 else "RGB"), dtype=np.float32)
    if a.shape[:2] != (h, w):
        raise ValueError(f"image is {a.shape[1]}x{a.shape[0]}, the model takes {w}x{h}")
    if not pixels:
        a = a * np.float32(1 / 255)  # pixels scaled to [0, 1]
    return a[None] if c == 1 else a.transpose(2, 0, 1)


def _read_npy(path: str, shape: tuple[int, int, int]) -> np.ndarray:
    a = np.load(path, allow_pickle=False)
    if a.ndim == 3:
        a = a[None]
    if a.ndim != 4 or tuple(a.shape[1:]) != shape or a.shape[0] < 1:
        raise ValueError(f"array shape {a.shape}: the model takes [{shape[0]}, {shape[1]}, "
                         f"{shape[2]}] or [N, {shape[0]}, {shape[1]}, {shape[2]}]")
    if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        raise ValueError(f"array dtype {a.dtype} is not numeric")
    a = np.ascontiguousarray(a, dtype=np.float32)
    if not np.isfinite(a).all():
        raise ValueError("array holds NaN or infinity")
    return a


def _score_partition(payload: ModelPayload, files: list[str], names: list[str], kind: str,
                     plan: dict[str, int], batch: int, top_k: int, full: bool) -> dict[str, Any]:
    """Decode, run and reduce one partition on a worker. A file that cannot be read or has the
    wrong shape is reported by name, not raised: the client applies the on_error policy."""
    t0 = time.perf_counter()
    model = _worker_model(payload, _threads_here(plan))
    shape = model.input_shape
    arrays, rows, errors = [], [], []
    for f, name in zip(files, names):
        try:
            a = (_read_image(f, shape, model.takes_pixels) if kind == "image"
                 else _read_npy(f, shape))
        except Exception as e:  # noqa: BLE001 - any decoder failure is this file's failure
            errors.append((name, f"{type(e).__name__}: {e}"))
            continue
        if kind == "image":
            arrays.append(a[None])
            rows.append(name)
        else:
            arrays.append(a)
            rows.extend([f"{name}[{i}]" for i in range(a.shape[0])] if a.shape[0] > 1 else [name])
    res: dict[str, Any] = {"names": rows, "errors": errors, "pid": os.getpid()}
    if arrays:
        y = _run_batched(model, np.concatenate(arrays) if len(arrays) > 1 else arrays[0], batch)
        if full:
            res["outputs"] = y
        else:
            res["top_class"], res["top_score"] = _top_k(y, top_k)
    res["seconds"] = time.perf_counter() - t0
    return res


def _top_k(y: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    k = min(k, y.shape[1])
    idx = np.argpartition(-y, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(y, idx, axis=1), axis=1, kind="stable")
    idx = np.take_along_axis(idx, order, axis=1).astype(np.int32)
    return idx, np.take_along_axis(y, idx, axis=1)


def _positive(v: Any, what: str) -> int:
    if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
        raise ValueError(f"{what} must be a positive int, got {v!r}")
    return int(v)


class _ParquetWriter:
    """Names and top-k, one row group per partition, written as partitions complete."""

    def __init__(self, path: str, k: int, labels: Optional[list[str]]) -> None:
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise ScoringError("Parquet output needs pyarrow: pip install 'hbn_engine[dask]'") from None
        self.pa, self.k, self.labels = pa, k, labels
        fields = [pa.field("name", pa.string()),
                  pa.field("top_class", pa.list_(pa.int32(), k)),
                  pa.field("top_score", pa.list_(pa.float32(), k))]
        if labels is not None:
            fields.append(pa.field("top_label", pa.list_(pa.string(), k)))
        self.schema = pa.schema(fields)
        self.writer = pq.ParquetWriter(path, self.schema)

    def write(self, res: dict[str, Any]) -> None:
        pa, k = self.pa, self.k
        cols = [pa.array(res["names"], pa.string()),
                pa.FixedSizeListArray.from_arrays(pa.array(res["top_class"].ravel()), k),
                pa.FixedSizeListArray.from_arrays(pa.array(res["top_score"].ravel()), k)]
        if self.labels is not None:
            lab = [self.labels[i] if i < len(self.labels) else str(i) for i in res["top_class"].ravel()]
            cols.append(pa.FixedSizeListArray.from_arrays(pa.array(lab, pa.string()), k))
        self.writer.write_table(pa.Table.from_arrays(cols, schema=self.schema))

    def close(self) -> None:
        self.writer.close()


class _NpyWriter:
    """Full model outputs in input order (out.npy) and their names (out.names.txt); held on the
    client until the end, so size it for the client's memory."""

    def __init__(self, path: str) -> None:
        self.path, self.parts = path, {}

    def add(self, index: int, res: dict[str, Any]) -> None:
        self.parts[index] = res

    def close_into(self, tmp: str, names_tmp: str, tail: tuple[int, ...]) -> None:
        parts = [self.parts[i] for i in sorted(self.parts) if self.parts[i]["names"]]
        y = (np.concatenate([p["outputs"] for p in parts]) if parts
             else np.empty((0, *tail), dtype=np.float32))
        with open(tmp, "wb") as f:
            np.save(f, y)
        with open(names_tmp, "w", encoding="utf-8") as f:
            f.writelines(n + "\n" for p in parts for n in p["names"])


def _files_per_task(kind: str, n_files: int, batch: int, n_workers: int) -> int:
    """Images per task: at least one full batch (the engine's unit of work), at most 4 (the
    per-task cost of Dask, ~1 ms, stays small), and otherwise small enough that every worker
    gets about 4 tasks to balance the load. A .npy shard is its own task."""
    if kind == "npy":
        return 1
    balanced = -(-n_files // (4 * max(1, n_workers)))
    return max(batch, min(4 * batch, balanced))


def _completed(futures: list, timeout: Optional[float]) -> Iterator[tuple[Any, Any]]:
    try:
        yield from as_completed(futures, with_results=True, timeout=timeout)
    except dask.distributed.TimeoutError:
        raise ScoringError(f"scoring did not finish within {timeout} s") from None


def score_files(model: Model, source: Union[PathLike, Sequence[PathLike]], out: PathLike, *,
                client: Optional[Client] = None, scheduler: Optional[str] = None,
                workers: Optional[int] = None, batch: int = 32, top_k: int = 5,
                on_error: str = "skip", files_per_task: Optional[int] = None,
                progress: Optional[Callable[[int, int, ScoreSummary], None]] = None,
                timeout: Optional[float] = None) -> ScoreSummary:
    """Score a folder (or list) of images or .npy shards on a Dask cluster and write ``out``.

    ``out`` ending in .parquet: one row per image (``name``, ``top_class``, ``top_score`` and
    ``top_label`` when the model has class names), rows in completion order; ending in .npy:
    the full outputs in input order plus ``<out stem>.names.txt``. Images are decoded with
    Pillow to the model's channels (grey or RGB), must already have its height and width, and
    are fed as pixels / 255 (as the pixel values themselves to a model exported with
    ``input_norm``, which normalises them); .npy files hold one [C, H, W] image or an
    [N, C, H, W] shard.

    The cluster is ``client``, else a Client on ``scheduler``, else an in-process LocalCluster
    of ``workers`` processes. ``on_error``: "skip" reports bad files in the summary and scores
    the rest, "fail" raises ScoringError naming the first one and writes nothing. The output is
    written to a temporary name and renamed when complete. ``progress(done, total, summary)``
    is called after every partition. ``timeout``: seconds for the whole run (ScoringError).
    """
    if on_error not in ("skip", "fail"):
        raise ValueError(f"on_error must be 'skip' or 'fail', got {on_error!r}")
    batch, top_k = _positive(batch, "batch"), _positive(top_k, "top_k")
    out = os.fspath(out)
    fmt = os.path.splitext(out)[1].lower()
    if fmt not in (".parquet", ".npy"):
        raise ValueError(f"out must end in .parquet or .npy, got {out}")
    tail = model.output_shape(1)[1:]
    if fmt == ".parquet" and len(tail) != 1:
        raise ValueError(f"top-k needs a [N, classes] output; this model gives [N, "
                         f"{', '.join(map(str, tail))}]: write .npy instead")
    kind, files = list_inputs(source)
    root = os.fspath(source) if isinstance(source, (str, os.PathLike)) and os.path.isdir(source) else None
    names = [os.path.relpath(f, root) if root else f for f in files]
    if files_per_task is not None:
        _positive(files_per_task, "files_per_task")

    if client is None:
        with open_client(scheduler, workers) as c:
            return score_files(model, files if root is None else source, out, client=c,
                               batch=batch, top_k=top_k, on_error=on_error,
                               files_per_task=files_per_task, progress=progress,
                               timeout=timeout)
    if scheduler is not None or workers is not None:
        raise ValueError("pass either client or scheduler / workers, not both")

    plan = engine_threads_plan(client)
    n_workers = len(client.scheduler_info()["workers"])
    per_task = files_per_task or _files_per_task(kind, len(files), batch, n_workers)
    parts = [(files[i:i + per_task], names[i:i + per_task]) for i in range(0, len(files), per_task)]
    summary = ScoreSummary(images=0, workers=n_workers, engine_threads=plan,
                           partitions=len(parts), out=out)
    payload = _payload(model)
    model_node = _model_node(payload)
    # pure=False: fresh keys per run, so a rerun after files changed never reuses old results
    # (a retried task keeps its key within the run).
    score = dask.delayed(_score_partition, pure=False)
    tasks = [score(model_node, f, n, kind, plan, batch, top_k, fmt == ".npy") for f, n in parts]

    tmp = f"{out}.partial-{os.getpid()}"
    names_out = os.path.splitext(out)[0] + ".names.txt"
    labels = model.metadata.get("class_names")
    writer: Any = _ParquetWriter(tmp, min(top_k, tail[0]), labels) if fmt == ".parquet" else _NpyWriter(out)
    futures: list = []
    ok = False
    t0 = time.perf_counter()
    try:
        with _graph_may_hold(payload):
            futures = client.compute(tasks)
        index = {f.key: i for i, f in enumerate(futures)}
        done = 0
        for fut, res in _completed(futures, timeout):
            if res["errors"]:
                if on_error == "fail":
                    name, why = res["errors"][0]
                    raise ScoringError(f"bad input {name}: {why}")
                summary.failures.extend(res["errors"])
            if fmt == ".parquet":
                if res["names"]:
                    writer.write(res)
            else:
                writer.add(index[fut.key], res)
            summary.images += len(res["names"])
            pids = summary.partitions_by_pid
            pids[res["pid"]] = pids.get(res["pid"], 0) + 1
            done += 1
            if progress is not None:
                progress(done, len(parts), summary)
        if fmt == ".parquet":
            writer.close()
        else:
            writer.close_into(tmp, names_out + ".partial", tail)
            os.replace(names_out + ".partial", names_out)
        os.replace(tmp, out)
        ok = True
    finally:
        summary.seconds = time.perf_counter() - t0
        if not ok:
            with contextlib.suppress(Exception):
                client.cancel(futures)
            if fmt == ".parquet":
                with contextlib.suppress(Exception):
                    writer.close()
            for p in (tmp, names_out + ".partial"):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(p)
    summary.failures.sort()
    return summary
