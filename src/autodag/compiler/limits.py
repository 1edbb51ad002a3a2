"""Every tunable threshold of the compiler and the plan cache, so tests patch one place.

Measured on scalar and array chains on a 2-core machine: the interpreter costs about
4 us per node and call on Python floats and 6-17 us on small arrays; generated code
0.25 us and 3.5-4 us.
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
#: Seconds of expected compile time per node of a scalar function.
SCALAR_COMPILE_COST = 5e-5
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
#: Elements from which summing gradients in place beats making a new array.
IN_PLACE_MIN = 1024
#: Nodes a repeated block must cover (all its repetitions) to be written as a loop.
ROLL_MIN_LOOP = 64
#: Nodes from which general code leaves shape checks and accumulation to runtime
#: helpers: less than half the source to compile (150 us a node, not 350, on a
#: 2-core machine), about a tenth slower to run.
COMPACT_NODES = 400
