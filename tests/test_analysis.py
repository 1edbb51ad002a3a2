"""The compiler's analysis, checked on its IR directly (nothing generated or run)."""

from __future__ import annotations

from typing import Any

import numpy as np

import autodag as ad
from autodag.compiler.analysis import build_ir
from autodag.compiler.ir import Acc, PlanIR
from autodag.traversal import topological_sort


def _ir(out: Any, wrt: list[Any] | None) -> tuple[PlanIR, dict[Any, int]]:
    order = topological_sort(out)
    ir = build_ir(order, [out], wrt, ad.get_registry())
    return ir, {n: i for i, n in enumerate(order)}


def test_a_value_read_twice_gets_a_first_then_an_added_contribution() -> None:
    with ad.Graph():
        x = ad.Variable(np.ones(3), name="x")
        y = x * x  # both inputs are x: two contributions to one gradient
    ir, slot = _ir(y, [x])
    (step,) = ir.backward
    assert step.slot == slot[y]
    modes = [c.mode for c in step.contributions]
    assert [c.target for c in step.contributions] == [slot[x], slot[x]]
    # Templates never return None: certain. g * x is a new array, so the gradient is
    # the plan's own from its first term, and the second is added in place.
    assert modes == [Acc.FIRST, Acc.OWNED]
    assert [c.fresh for c in step.contributions] == [True, True]
    assert step.certain and step.written is not None and step.written.complete


def test_three_contributions_accumulate_in_place_into_the_owned_sum() -> None:
    with ad.Graph():
        x = ad.Variable(np.ones(3), name="x")
        y = (x + x) + x
    ir, slot = _ir(y, [x])
    into_x = [c.mode for st in ir.backward for c in st.contributions if c.target == slot[x]]
    # add passes its gradient through (``{g}``): a first term that is another
    # gradient's array, so the second makes a new sum, which the third adds to.
    assert into_x == [Acc.FIRST, Acc.ADD, Acc.OWNED]
    assert not any(c.fresh for st in ir.backward for c in st.contributions)


def test_a_called_rule_may_return_none_so_its_gradient_is_not_certain() -> None:
    with ad.Graph():
        x = ad.Variable(np.ones(3), name="x")
        t = ad.ops.tanh(x)  # no template: its rule is called
        y = t * 2.0
    ir, slot = _ir(y, [x])
    by_slot = {st.slot: st for st in ir.backward}
    (c,) = by_slot[slot[t]].contributions
    assert c.code is None and not c.sure and c.mode is Acc.MAYBE
    assert slot[x] in ir.maybe_none and ir.uses_xp


def test_values_die_after_their_last_use_and_only_shapes_are_kept() -> None:
    with ad.Graph():
        x = ad.Variable(np.ones(3), name="x")
        a = x + 1.0
        b = a + 1.0  # add's rules read neither input: a is dead after b's forward
        y = b * x
    ir, slot = _ir(y, [x])
    fwd = {st.slot: st for st in ir.forward}
    assert slot[a] in fwd[slot[b]].dead
    assert fwd[slot[a]].token  # its gradient is summed to its shape, which is kept
    # multiply reads both inputs: b's value is kept for the backward pass.
    assert slot[b] not in fwd[slot[y]].dead


def test_values_only_plans_have_no_backward_steps() -> None:
    with ad.Graph():
        x = ad.Variable(2.0, name="x")
        y = x * x + 1
    ir, _ = _ir(y, None)
    assert ir.backward == () and not ir.grad_mode and ir.templated


def test_a_loop_keeps_steps_only_for_its_first_and_last_block() -> None:
    from autodag.compiler.rolling import Loop

    with ad.Graph():
        x = ad.Variable(np.ones(2), name="x")
        h: Any = x
        for _ in range(10):
            h = ad.ops.tanh(h)
    order = topological_sort(h)
    loop = Loop(1, 1, 10, ((("carry", 0),),))
    ir = build_ir(order, [h], [x], ad.get_registry(), loops=[loop])
    assert sorted(st.slot for st in ir.backward) == [1, 10]
    # A looped op's contribution is never certain: code after it adds with care.
    assert all(not c.sure for st in ir.backward for c in st.contributions)
