"""The ``hbn`` command line: ``hbn bench`` (the headline benchmark and report), ``hbn info``."""
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
    print(f"{'model':<11} {'variant':<8} {'batch':>5} {'thr':>3} {'hbn ms':>9} {'fp32 ms':>9} "
          f"{'speedup':>8} {'paper FLOP':>10}")
    for s in speedup_rows(res):
        paper = f"{s['paper_flop_speedup']:.1f}x" if s["paper_flop_speedup"] else "-"
        print(f"{s['model']:<11} {s['variant']:<8} {s['batch']:>5} {s['threads']:>3} "
              f"{s['hbn_ms']:>9.2f} {s['baseline_ms']:>9.2f} {s['speedup']:>7.2f}x {paper:>10}")
    print(f"\nreport: {path}")
    return 0


def _info(args: argparse.Namespace) -> int:
    import hbn_engine

    feats = hbn_engine.cpu_features()
    print(f"cpu: {feats.pop('model')}")
    print(f"kernel path: {hbn_engine.active_isa()} (best {hbn_engine.best_isa()}; "
          f"supported: {', '.join(hbn_engine.supported_isas())})")
    print("features: " + " ".join(k for k, v in feats.items() if v))
    return 0


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
    b.add_argument("--no-onnx", action="store_true", help="compare with PyTorch only")
    b.set_defaults(func=_bench)

    i = sub.add_parser("info", help="CPU features and the kernel path in use")
    i.set_defaults(func=_info)

    args = p.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
