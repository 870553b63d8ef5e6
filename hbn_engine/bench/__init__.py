"""The benchmark suite behind ``hbn bench``: engine latency beside PyTorch and ONNX Runtime fp32.

Every comparison is a ratio measured in one run on one machine (same thread count, same batch),
reported as medians, because the machines are shared and noisy.
"""
from hbn_engine.bench.paper import PAPER_FLOP_SPEEDUPS, XNOR_NET_SPEEDUP
from hbn_engine.bench.timing import Timing, time_callable

__all__ = ["PAPER_FLOP_SPEEDUPS", "XNOR_NET_SPEEDUP", "Timing", "time_callable"]
