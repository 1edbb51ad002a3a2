"""Every tunable threshold of the compiler and the plan cache, so tests patch one place.

Figures in the comments were measured on a 2-core machine (benchmarks/compile_cost.py):
on a chain of small-array ops the interpreter costs about 8 us per node and call, the
generated code about 5 us.
"""

from __future__ import annotations

#: A cached plan of at most this many nodes is compiled on its second call: that costs
#: at most a few milliseconds, and for small graphs the per-call overhead is what matters.
COMPILE_AT_ONCE = 100
#: Seconds of expected compile time per node of general (array) code written
#: straight-line. A larger plan is compiled once its interpreted calls have taken that
#: long in all, so a caller never spends much more than twice the best of interpreting
#: every call and compiling at once.
COMPILE_COST = 2e-4
#: Seconds per node of analysing a plan (the part of compiling that a loop does not
#: save).
ANALYSIS_COST = 2.5e-5
#: Plans kept per graph version; a program asking for more distinct ones starts over.
MAX_PLANS = 128
#: Statements per generated function before a plan is cut into chunks: CPython
#: compiles one huge function in superlinear time.
CHUNK = 2000
#: Nodes from which a scalar function writes a repeated block as a loop.
ROLL_MIN_NODES = 512
#: Nodes from which the general function does: its straight-line code costs CPython
#: about 350 us a node to compile, a loop a fraction of that, for calls a little slower.
ROLL_MIN_ARRAY_NODES = 200
#: Blocks needed before a loop is worth writing.
MIN_REPS = 4
#: Nodes from which ``compile`` runs the interpreter until generating code pays off.
LAZY_GENERAL_NODES = 1500
#: Nodes a repeated block must cover (all its repetitions) to be written as a loop.
ROLL_MIN_LOOP = 64
#: Nodes from which general code leaves shape checks and accumulation to runtime
#: helpers: less than half the source to compile (150 us a node, not 350, on a
#: 2-core machine), about a tenth slower to run.
COMPACT_NODES = 400
#: Elements of a call's largest NumPy input from which a program may run fused kernels
#: (the ``fusion`` extra). Fused programs are faster from a few elements on
#: (benchmarks/fusion_crossover.py); smaller arrays are scalars in all but name.
FUSE_MIN_SIZE = 8
#: Seconds a signature's unfused calls take before its fused plan is built: about
#: what building costs (numba compiles a kernel in 50-150 ms, more for the first).
FUSE_BUILD_COST = 0.25
#: Ops at most in one fused expression.
FUSE_MAX_OPS = 96
#: Ops of a node that several others read, up to which each of them computes it again
#: inside its own expression rather than reading it from a full-size array.
FUSE_RECOMPUTE_OPS = 16
#: Arrays (inputs and constants) one fused expression may read: a ufunc's operands
#: are limited by NumPy's iterator, a few dozen.
FUSE_MAX_ARGS = 24
#: Kernels one fused plan compiles at most (the largest are kept): numba takes
#: 50-150 ms for each.
FUSE_MAX_KERNELS = 12
#: Nodes from which a graph is not fused: building its gradient as nodes and compiling
#: its kernels would cost more than a few calls save.
FUSE_MAX_NODES = 2000
#: Calls of a new signature timed each way (fused and not) before the faster is kept.
FUSE_TRIALS = 3
#: Distinct input signatures (shapes and dtypes) for which a program keeps fused code.
FUSE_MAX_SIGNATURES = 8
