"""The ``hbn`` command line.

``hbn bench``    the headline benchmark (engine vs PyTorch / ONNX Runtime fp32) and its report
``hbn info``     CPU features and the kernel path in use
``hbn inspect``  what a .hbn file holds (validated, no native code involved)
``hbn profile``  per-op time of a .hbn model in the engine
``hbn score``    score a folder of images or .npy shards on a Dask cluster (Parquet / .npy out)
``hbn demo``     train FPrec / WBin / FBin / partition-chosen Hybrid on real data, check the engine
"""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence


def _csv(kind):
    return lambda s: tuple(kind(v) for v in s.split(",") if v)


def _bench(args: argparse.Namespace) -> int:
    try:
        import torch  # noqa: F401
    except ImportError:
        print("hbn bench needs torch (and onnxruntime): pip install 'hbn_engine[bench]'",
              file=sys.stderr)
        return 2
    from hbn_engine.bench.machine import machine_info
    from hbn_engine.bench.report import speedup_rows, write_report, xnor_summary
    from hbn_engine.bench.suite import ARCHS, VARIANTS, BenchConfig, count_tasks, run_suite

    cfg = BenchConfig()
    if args.quick:
        cfg.min_time, cfg.max_time = 0.1, 3.0
        cfg.batches = (1,)
        cfg.num_classes = 10
    for name in ("models", "variants", "batches", "threads"):
        if getattr(args, name):
            setattr(cfg, name, getattr(args, name))
    bad = set(cfg.models) - set(ARCHS) or set(cfg.variants) - set(VARIANTS)
    if bad:
        print(f"unknown model or variant: {', '.join(sorted(bad))}", file=sys.stderr)
        return 2
    if args.min_time is not None:
        cfg.min_time = args.min_time
    if args.no_layers:
        cfg.per_layer = False
    if args.no_int8:
        cfg.int8 = False
    if args.no_xnor:
        cfg.xnor_layer = False
    baselines = ["torch"]
    try:
        import onnxruntime  # noqa: F401

        baselines.append("onnxruntime")
    except ImportError:
        print("onnxruntime not installed: comparing with PyTorch only", file=sys.stderr)
    if args.no_onnx and "onnxruntime" in baselines:
        baselines.remove("onnxruntime")
    cfg.baselines = tuple(baselines)

    print("measuring the machine's binary and float peaks ...", flush=True)
    machine = machine_info()
    total = count_tasks(cfg)
    try:
        from tqdm import tqdm

        bar = tqdm(total=total, unit="step", dynamic_ncols=True)

        def progress(msg: str) -> None:
            bar.set_description(msg[:60])
            bar.update(1)
    except ImportError:
        bar = None
        done = [0]

        def progress(msg: str) -> None:
            done[0] += 1
            print(f"[{done[0]}/{total}] {msg}", flush=True)

    res = run_suite(cfg, machine, progress)
    if bar is not None:
        bar.close()
    path = write_report(res, args.out)

    print()
    peak = machine.get("peak")
    if peak:
        print(f"{machine['cpu']}, path {machine['isa']}: binary/float MAC peak ratio "
              f"{peak['ratio']:.1f}x per core (XNOR-Net claim: 58x)")
    xs = xnor_summary(res)
    if xs:
        print(f"XNOR-Net layer (256->256, 3x3, 14x14): FullBinConv {xs['fbin_us']:.0f} us, "
              f"{xs['speedup_vs_best_float']:.1f}x faster than {xs['best_float']} fp32 (claim 58x)")
    print(f"{'model':<11} {'variant':<11} {'batch':>5} {'thr':>3} {'hbn ms':>9} {'fp32 ms':>9} "
          f"{'speedup':>8} {'paper FLOP':>10} {'this CPU':>9}")
    for s in speedup_rows(res):
        paper = f"{s['paper_flop_speedup']:.1f}x" if s["paper_flop_speedup"] else "-"
        here = f"{s['machine_flop_speedup']:.1f}x" if s["machine_flop_speedup"] else "-"
        print(f"{s['model']:<11} {s['variant']:<11} {s['batch']:>5} {s['threads']:>3} "
              f"{s['hbn_ms']:>9.2f} {s['baseline_ms']:>9.2f} {s['speedup']:>7.2f}x {paper:>10} "
              f"{here:>9}")
    print("(paper FLOP = the paper's model with 58x per binary MAC; this CPU = the same model with "
          "the measured peak ratio)")
    print(f"\nreport: {path}")
    return 0


def _info(args: argparse.Namespace) -> int:
    import hbn_engine

    feats = hbn_engine.cpu_features()
    print(f"cpu: {feats.pop('model')}")
    print(f"kernel path: {hbn_engine.active_isa()} (best {hbn_engine.best_isa()}; "
          f"supported: {', '.join(hbn_engine.supported_isas())})")
    print("features: " + " ".join(k for k, v in feats.items() if v))
    # Every kernel family's table, as dispatch sees it now (csrc/hbn/kernel_table.h).
    tables = hbn_engine.kernel_tables()
    chosen = {fam: next((r["name"] for r in rows if r["selected"]), None) for fam, rows in tables.items()}
    print("kernel tables (best row first; * dispatched now, - not supported here):")
    for fam, rows in tables.items():
        cells = [("*" if r["selected"] else "-" if not r["supported"] else " ") + r["name"] for r in rows]
        print(f"  {fam:<12} " + "  ".join(cells))
    # What each layer kind runs on this path (docs/kernels.md).
    print(f"FullBin layers: XNOR + popcount (bconv/{chosen['bconv']})")
    fma = f"signs decoded into FMAs (sgemm/{chosen['sgemm']})"
    lut = chosen.get("wbconv_lut")
    print("WeightBin layers: " + (f"table lookups (wbconv_lut/{lut}) where the measured rule takes them, "
                                  f"else {fma}" if lut else fma))
    print(f"float layers: SGEMM (sgemm/{chosen['sgemm']}), inputs read in place where a kernel row fits "
          "a K block")
    print(f"8-bit layers (conv_q8): u8 x s8 -> s32 GEMM (qgemm/{chosen['qgemm']})")
    return 0


def _layer_kinds(metadata: dict) -> list[str]:
    """Per conv / linear layer: the kernel kind and, when the export front end stored it,
    why (so a layer meant to be binary that stayed float shows at once)."""
    names = {"fbin": "FullBin", "wbin": "WeightBin", "fprec": "float", "int8": "int8",
             "wbin_int8": "WBin int8"}
    out8 = _int8_lines(metadata)
    report = metadata.get("frontend")
    if isinstance(report, dict) and isinstance(report.get("layers"), list):
        rows = [r for r in report["layers"] if isinstance(r, dict)]
        width = max([len(str(r.get("name", ""))) for r in rows] + [5])
        out = ["layer kernels (export front end):", f"  {'layer':<{width}}  {'kernel':<9}  why"]
        out += [f"  {str(r.get('name')):<{width}}  {names.get(r.get('kind'), r.get('kind')):<9}  "
                f"{r.get('reason', '')}" for r in rows]
        out += [f"  note: {n}" for n in report.get("notes", [])]
        return out + out8
    layers = [tuple(x) for x in metadata.get("layers") or [] if len(x) == 2]
    convs = [(n, k) for n, k in layers if k in names]
    if not convs:
        return out8
    width = max(len(str(n)) for n, _ in convs)
    return (["layer kernels (exported as written; no front-end report stored):"]
            + [f"  {str(n):<{width}}  {names.get(k, k)}" for n, k in convs] + out8)


def _int8_lines(metadata: dict) -> list[str]:
    """The 8-bit layers (export edges="int8" / int8_layers) and the image normalisation."""
    out = []
    norm = metadata.get("input_norm")
    if isinstance(norm, dict):
        out.append(f"input: uint8 images (or float pixels), normalised in the engine: mean "
                   f"{norm.get('mean')} std {norm.get('std')}")
    rows = metadata.get("int8")
    if isinstance(rows, list) and rows:
        out.append("int8 layers (conv_q8, WeightBin ones conv_wbin_q8; activation scale / zero "
                   "point and where from):")
        for r in rows:
            if isinstance(r, dict):
                out.append(f"  {r.get('layer')}: in_scale {r.get('in_scale'):.6g} in_zero "
                           f"{r.get('in_zero')} ({r.get('source')})")
    return out


def _inspect(args: argparse.Namespace) -> int:
    from hbn_engine.format import FormatError, describe, read_hbn

    try:
        print(describe(args.file))
        for line in _layer_kinds(read_hbn(args.file).metadata):
            print(line)
    except (FormatError, OSError) as e:
        print(f"hbn inspect: {e}", file=sys.stderr)
        return 1
    return 0


def _profile(args: argparse.Namespace) -> int:
    import numpy as np

    import hbn_engine
    from hbn_engine.format import FormatError

    try:
        model = hbn_engine.load(args.file)
    except (FormatError, OSError) as e:
        print(f"hbn profile: {e}", file=sys.stderr)
        return 1
    model.num_threads = args.threads
    x = np.random.default_rng(0).standard_normal((args.batch, *model.input_shape), dtype=np.float32)
    rows = model.profile(x, repeats=args.repeats)
    total = sum(r["seconds"] for r in rows) or float("nan")
    print(f"{'op':<28} {'type':<14} {'kind':<6} {'ms':>9} {'share':>6}")
    for r in rows:
        print(f"{r['name'][:28]:<28} {r['op'][:14]:<14} {r['kind']:<6} "
              f"{r['seconds'] * 1e3:>9.3f} {r['seconds'] / total:>6.1%}")
    print(f"{'total':<50} {total * 1e3:>9.3f}")
    return 0


def _score(args: argparse.Namespace) -> int:
    try:
        from hbn_engine import scoring
    except ImportError as e:
        print(f"hbn score: {e}", file=sys.stderr)
        return 2
    import hbn_engine
    from hbn_engine.format import FormatError

    try:
        model = hbn_engine.load(args.model)
    except (FormatError, OSError) as e:
        print(f"hbn score: {e}", file=sys.stderr)
        return 1
    try:
        from tqdm import tqdm
    except ImportError:
        tqdm = None
    bar = None

    def progress(done: int, total: int, s: "scoring.ScoreSummary") -> None:
        nonlocal bar
        if tqdm is not None:
            if bar is None:
                bar = tqdm(total=total, unit="part", dynamic_ncols=True, file=sys.stderr)
            bar.set_postfix(images=s.images, failed=len(s.failures), refresh=False)
            bar.update(1)
        elif done == total or done % max(1, total // 20) == 0:
            print(f"[{done}/{total} partitions] {s.images} images, {len(s.failures)} failed",
                  file=sys.stderr, flush=True)

    try:
        s = scoring.score_files(model, args.input, args.out, scheduler=args.scheduler,
                                workers=args.workers, batch=args.batch, top_k=args.top_k,
                                on_error=args.on_error, files_per_task=args.files_per_task,
                                progress=progress)
    except (scoring.ScoringError, ValueError, OSError, TypeError) as e:
        print(f"hbn score: {e}", file=sys.stderr)
        return 1
    finally:
        if bar is not None:
            bar.close()
    threads = ", ".join(f"{h}: {t}" for h, t in sorted(s.engine_threads.items()))
    print(f"scored {s.images} images in {s.seconds:.2f} s ({s.images_per_second:.1f} images/s) "
          f"on {s.workers} workers (engine threads per run: {threads}); "
          f"{len(s.failures)} failed")
    for name, why in s.failures[:20]:
        print(f"  failed: {name}: {why}")
    if len(s.failures) > 20:
        print(f"  ... and {len(s.failures) - 20} more")
    print(f"wrote {s.out}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from hbn_engine import demo

    return demo.main(args.demo_args)


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="hbn", description="hbn_engine command line")
    sub = p.add_subparsers(dest="cmd", required=True)

    b = sub.add_parser("bench", help="benchmark the engine vs PyTorch / ONNX Runtime and write a report")
    b.add_argument("--out", default="hbn_report", help="report folder (default: hbn_report)")
    b.add_argument("--models", type=_csv(str), help="comma list: alexnet,resnet18,sketchanet,squeezenet")
    b.add_argument("--variants", type=_csv(str), help="comma list: fprec,wbin,fbin,hybrid")
    b.add_argument("--batches", type=_csv(int), help="comma list of batch sizes (default 1,8)")
    b.add_argument("--threads", type=_csv(int), help="comma list of thread counts (default 1,all)")
    b.add_argument("--min-time", type=float, help="seconds of timing per measurement (default 0.5)")
    b.add_argument("--quick", action="store_true", help="short timings, batch 1, 10 classes")
    b.add_argument("--no-layers", action="store_true", help="skip the per-layer breakdown")
    b.add_argument("--no-xnor", action="store_true", help="skip the XNOR-Net single-layer setting")
    b.add_argument("--no-int8", action="store_true",
                   help="skip the FBin / Hybrid + int8 edges rows and ONNX Runtime int8")
    b.add_argument("--no-onnx", action="store_true", help="compare with PyTorch only")
    b.set_defaults(func=_bench)

    i = sub.add_parser("info", help="CPU features and the kernel path in use")
    i.set_defaults(func=_info)

    ins = sub.add_parser("inspect", help="describe a .hbn file")
    ins.add_argument("file")
    ins.set_defaults(func=_inspect)

    pr = sub.add_parser("profile", help="per-op time of a .hbn model in the engine")
    pr.add_argument("file")
    pr.add_argument("--batch", type=int, default=1)
    pr.add_argument("--threads", type=int, default=1)
    pr.add_argument("--repeats", type=int, default=10)
    pr.set_defaults(func=_profile)

    sc = sub.add_parser("score", help="score many images on a Dask cluster (pip install "
                        "'hbn_engine[dask]')")
    sc.add_argument("model", help=".hbn model file")
    sc.add_argument("input", help="folder of images (PNG/JPEG/...) or of .npy shards, or one file")
    sc.add_argument("--out", required=True,
                    help="results.parquet (name + top-k per image) or results.npy (full outputs)")
    sc.add_argument("--scheduler", help="Dask scheduler address, e.g. tcp://host:8786 "
                    "(default: an in-process local cluster)")
    sc.add_argument("--workers", type=int, help="local cluster worker processes (default: one "
                    "per core)")
    sc.add_argument("--batch", type=int, default=32, help="images per engine run (default 32)")
    sc.add_argument("--top-k", type=int, default=5, help="classes kept per image (default 5)")
    sc.add_argument("--files-per-task", type=int,
                    help="files per Dask task (default: 1 to 4 batches of images, about 4 tasks "
                    "per worker; 1 .npy shard)")
    sc.add_argument("--on-error", choices=("skip", "fail"), default="skip",
                    help="bad input file: report and skip it (default), or stop the run")
    sc.set_defaults(func=_score)

    d = sub.add_parser("demo", help="train and compare variants on real data (python -m hbn_engine.demo)",
                       add_help=False)
    d.add_argument("demo_args", nargs=argparse.REMAINDER)
    d.set_defaults(func=_demo)

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["demo"]:
        # Everything after "demo" (including --help) belongs to the demo's own parser.
        return _demo(argparse.Namespace(demo_args=argv[1:]))
    args = p.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
