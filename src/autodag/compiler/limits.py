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
