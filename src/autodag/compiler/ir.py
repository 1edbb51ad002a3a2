"""The compiler's intermediate representation: a plan's passes as frozen data.

``analysis.build_ir`` decides everything here once: which ops run, in which order,
what each backward rule reads, how each gradient contribution is accumulated and when
each value dies. The emitters only print it; nothing is read back from the text.
Values are named by slot (position in the topological order): ``v3`` the value of
slot 3, ``g3`` its gradient, ``s3`` its shape when only that is kept.

Records are named tuples: immutable and typed like frozen dataclasses, but made at a
tuple's cost (a plan makes one or two per node, and a frozen dataclass costs CPython
about 3 us to build, a tenth of the budget for compiling a node) and cheap to import.
"""

from __future__ import annotations

import enum
from typing import NamedTuple

from ..nodes import Node
from .templates import Tpl, Written

__all__ = ["Acc", "BackwardStep", "Contribution", "ForwardStep", "PlanIR"]


class Acc(enum.Enum):
    """How a contribution is added to the gradient it goes to."""

    #: The first contribution, certainly made: the gradient is it.
    FIRST = "first"
    #: Maybe the first (an earlier one may be missing): ``t if g is None else g + t``.
    MAYBE = "maybe"
    #: The second, every earlier one certain: ``g + t`` (a new array the plan owns).
    ADD = "add"
    #: A later one, every earlier one certain: into the owned sum in place.
    OWNED = "owned"
    #: One of three or more that may be missing: a flag ``o{slot}`` tracks ownership.
    FLAGGED = "flagged"


class ForwardStep(NamedTuple):
    """One op of the forward pass."""

    slot: int
    inputs: tuple[int, ...]
    #: The op's forward template (None: its forward rule is called).
    template: Tpl | None
    #: Whether the backward pass keeps only this value's shape (``s{slot}``).
    token: bool
    #: Values no one reads after this step.
    dead: tuple[int, ...]


class Contribution(NamedTuple):
    """What one backward rule adds to one input's gradient."""

    k: int
    target: int
    #: The rule's format string (None: the rule is called).
    code: str | None
    pure: bool
    #: The rule never returns None here (a template, from a certain gradient).
    sure: bool
    mode: Acc
    #: Whether the input's value is kept (else its shape token ``s{target}``).
    like_value: bool
    #: The term is a new array (``Written.fresh``): a first contribution that is one
    #: makes the gradient an array the plan owns, added to in place.
    fresh: bool = False


class BackwardStep(NamedTuple):
    """One op of the backward pass."""

    slot: int
    inputs: tuple[int, ...]
    joint: bool
    #: Which inputs want a gradient.
    want: tuple[bool, ...]
    #: Whether the incoming gradient is never None at run time.
    certain: bool
    reads_out: bool
    reads_in: tuple[bool, ...]
    #: The rules as written (None for a joint rule).
    written: Written | None
    contributions: tuple[Contribution, ...]
    #: Whether ``g{slot}`` is dropped after the step; values no later rule reads.
    free_grad: bool
    dead: tuple[int, ...]


class PlanIR(NamedTuple):
    """Everything the emitters need to print a plan."""

    order: tuple[Node, ...]
    #: Per slot: the input slots of an op, None for a leaf or constant.
    inputs: tuple[tuple[int, ...] | None, ...]
    leaves: tuple[int, ...]
    constants: tuple[int, ...]
    outputs: tuple[int, ...]
    #: Per wrt node: its slot, or None when the plan does not contain it.
    wrt: tuple[int | None, ...] | None
    forward: tuple[ForwardStep, ...]
    #: Slots of leaves whose shape tokens the backward pass needs.
    leaf_tokens: tuple[int, ...]
    backward: tuple[BackwardStep, ...]
    #: Gradient slots set to None before the backward pass; slots with an ownership flag.
    maybe_none: tuple[int, ...]
    flagged: tuple[int, ...]
    #: Per wrt node: whether any gradient reaches it.
    reached: tuple[bool, ...]
    #: Every op declares templates and every constant is a Python number.
    templated: bool
    #: On Python floats the backward pass stays in Python arithmetic (no errstate).
    python_backward: bool
    #: A terse scalar function can be written (every rule the backward runs is a template).
    scalar: bool
    #: Whether any call takes ``xp``.
    uses_xp: bool
    #: Per op the backward pass may visit: which inputs want a gradient; and its rules
    #: as written (ops with per-input rules only).
    want: dict[int, tuple[bool, ...]]
    written: dict[int, Written]
    #: Per op slot: its forward template (None: called).
    forward_templates: dict[int, Tpl | None]

    @property
    def grad_mode(self) -> bool:
        """Whether the plan computes gradients."""
        return self.wrt is not None

    @property
    def target(self) -> int:
        """The slot of the differentiated output."""
        return self.outputs[0]
