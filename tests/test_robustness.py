"""Bad input gets a named AutodagError, and arithmetic gives IEEE answers on every path."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

import autodag as ad


@pytest.fixture
def strange_ops() -> Iterator[None]:
    class Strange:
        @ad.hookimpl
        def autodag_register_ops(self) -> list[ad.OpDef]:
            return [
                ad.OpDef(name="stringy", arity=1, forward=lambda a: "oops",
                         backward=(lambda xp, g, out, a: g,)),
                ad.OpDef(name="scaled", arity=1, forward=lambda a, scale: a * scale,
                         backward=(lambda xp, g, out, a, scale: g * scale,),
                         attributes={"scale": 1.0}),
            ]

    ad.register_plugin(Strange(), name="strange")
    yield
    ad.unregister_plugin("strange")


# --- IEEE arithmetic: one answer on every path ----------------------------------------
def _paths(build: Callable[[ad.Variable], ad.Node], x0: Any) -> dict[str, tuple[Any, Any]]:
    """(value, gradient) of build(x) at x0 through each way of running a graph."""
    with ad.Graph():
        x = ad.Variable(x0, name="x")
        y = build(x)
    (g_node,) = ad.gradients(y, [x])
    prog = ad.compile(y, [x], inputs=[x])
    with np.errstate(all="ignore"):
        vals, grads = prog(x0)
        return {
            "evaluate/grad": (ad.evaluate(y), ad.grad(y, [x])[0]),
            "compile": (vals, grads[0]),
            "gradients": (ad.evaluate(y), ad.evaluate(g_node)),
            "jvp": (ad.evaluate(y), ad.jvp(y, [x], [1.0])),
        }


@pytest.mark.parametrize(
    ("label", "build", "x0", "value", "slope"),
    [
        ("x / 0.0", lambda x: x / 0.0, 1.0, math.inf, math.inf),
        ("-x / 0.0", lambda x: -x / 0.0, 1.0, -math.inf, -math.inf),
        ("x / x at 0", lambda x: x / x, 0.0, math.nan, math.nan),
        ("x ** 10000", lambda x: x**10000, 2.0, math.inf, math.inf),
        ("x ** -1 at 0", lambda x: x**-1, 0.0, math.inf, -math.inf),
        ("10.0 ** x", lambda x: 10.0**x, 400.0, math.inf, math.inf),
        ("sqrt(x) at 0", lambda x: ad.ops.sqrt(x), 0.0, 0.0, math.inf),
        ("log(x) at 0", lambda x: ad.ops.log(x), 0.0, -math.inf, math.inf),
    ],
)
def test_arithmetic_is_ieee_on_every_path(
    label: str, build: Callable[[ad.Variable], ad.Node], x0: float, value: float, slope: float
) -> None:
    for path, (v, g) in _paths(build, x0).items():
        np.testing.assert_equal(float(v), value, err_msg=f"{label}: value by {path}")
        np.testing.assert_equal(float(g), slope, err_msg=f"{label}: gradient by {path}")


def test_huge_integer_powers_overflow_to_inf_instead_of_computing_forever() -> None:
    with ad.Graph():
        i = ad.Variable(2, name="i")
        y = i ** (10**9)
    with np.errstate(all="ignore"):
        assert ad.evaluate(y) == math.inf
        assert float(ad.grad(y, [i])[0]) == math.inf
    with ad.Graph():
        j = ad.Variable(3, name="j")
    assert ad.evaluate(j**3) == 27 and type(ad.evaluate(j**3)) is int  # exact when small


# --- errors that name what is wrong ----------------------------------------------------
def test_static_attributes_refuse_nodes_at_construction(strange_ops: None) -> None:
    with ad.Graph() as g:
        x = ad.Variable(np.ones(3), name="x")
        before = len(g.nodes)
        with pytest.raises(ad.ArgumentError, match=r"op 'scaled'.*attribute 'scale' is static"
                                                   r".*node 's'"):
            ad.ops.get("scaled")(x, scale=ad.Variable(3.0, name="s"))
        with pytest.raises(ad.ArgumentError, match=r"op 'sum'.*attribute 'axis'.*node 'k'"):
            ad.ops.sum(x, axis=ad.Variable(0, name="k"))  # type: ignore[arg-type]
        with pytest.raises(ad.ArgumentError, match=r"op 'sum'.*attribute 'axis'.*node 'k2'"):
            ad.ops.sum(x, axis=(0, ad.Variable(0, name="k2")))  # type: ignore[arg-type]
        # Nothing half-built joined the graph but the Variables themselves.
        assert len(g.nodes) == before + 3
        assert float(ad.evaluate(ad.ops.get("scaled")(x, scale=3.0).sum())) == 9.0


def test_a_forward_returning_a_string_is_blamed_not_the_formatter(strange_ops: None) -> None:
    with ad.Graph():
        x = ad.Variable(np.ones(3), name="x")
        y = ad.ops.get("stringy")(x) * 2.0
    for run in (lambda: ad.evaluate(y), lambda: ad.grad(y, [x])):
        with pytest.raises(ad.OpExecutionError,
                           match=r"Input 'stringy/0' is a str, not a number or array, returned "
                                 r"by op 'stringy' from plugin 'strange'"):
            run()
    with pytest.raises(ad.ShapeInferenceError, match=r"op 'stringy'.*returned a str"):
        ad.jacobian(ad.ops.get("stringy")(x), x)


def test_extra_positional_arguments_are_counted_right() -> None:
    with ad.Graph():
        x = ad.Variable(np.ones((2, 3)))
        with pytest.raises(ad.ArgumentError, match=r"sum\(\) got 1 extra positional argument:"):
            ad.ops.sum(x, 0, True, "extra")  # type: ignore[call-arg]
        with pytest.raises(ad.ArgumentError, match=r"got 2 extra positional arguments:"):
            ad.ops.sum(x, 0, True, "extra", "more")  # type: ignore[call-arg]
        with pytest.raises(ad.ArgumentError, match=r"multiple values for argument 'x1'"):
            ad.ops.multiply(x, 1.0, x1=2.0)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("feed", "match"),
    [
        (lambda p, s: {p: np.ones(4)}, r"Placeholder 'p' has shape \(4,\), declared shape"),
        (lambda p, s: {s: 1.0}, r"cannot feed operator node 's'"),
        (lambda p, s: {p: "three"}, r"feed for Placeholder 'p': value must be numeric"),
        (lambda p, s: {"p": np.ones(3), "pp": 1.0}, r"feed_dict names 'pp', but no node of the "
                                                   r"graph is called that; did you mean 'p'"),
        (lambda p, s: {3: 1.0}, r"feed_dict keys must be nodes or names"),
    ],
)
def test_bad_feeds_are_feed_errors(feed: Callable[[Any, Any], dict[Any, Any]],
                                   match: str) -> None:
    with ad.Graph():
        p = ad.Placeholder(name="p", shape=(3,))
        s = (p * 2.0).sum()
        s.name = "s"
    with pytest.raises(ad.FeedError, match=match) as err:
        ad.evaluate(s, feed_dict=feed(p, s))
    # Both built-in families, so that existing except clauses keep working.
    assert isinstance(err.value, (TypeError, ValueError))
    assert float(ad.evaluate(s, feed_dict={p: np.ones(3)})) == 6.0  # still usable


def test_a_name_of_the_graph_the_outputs_do_not_need_is_still_ignored() -> None:
    with ad.Graph():
        p = ad.Placeholder(name="p")
        ad.Placeholder(name="unused")
        y = p * 2.0
    assert float(ad.evaluate(y, feed_dict={"p": 1.0, "unused": 5.0})) == 2.0


def test_compiled_inputs_of_the_wrong_shape_or_kind_are_feed_errors() -> None:
    with ad.Graph():
        p = ad.Placeholder(name="p", shape=(3,))
        y = (p * p).sum()
    prog = ad.compile(y, [p], inputs=[p])
    with pytest.raises(ad.FeedError, match=r"'p' has shape \(2,\), declared shape \(3,\)"):
        prog(np.ones(2))
    with pytest.raises(ad.FeedError, match="takes 1 input value"):
        prog(np.ones(3), np.ones(3))
    with pytest.raises(ad.FeedError, match="value must be numeric"):
        prog("abc")
    with pytest.raises(ad.ArgumentError, match="inputs must be Placeholders or Variables"):
        ad.compile(y, [p], inputs=[y])
    assert float(prog(np.ones(3))[0]) == 3.0


def test_other_misuse_is_an_argument_error() -> None:
    with ad.Graph():
        c = ad.Constant(1.0, name="c")
        with pytest.raises(ad.ArgumentError, match="cannot reassign Constant 'c'"):
            c.value = 2.0
        with pytest.raises(ad.ArgumentError, match="value must be numeric"):
            ad.Variable("text")
        with pytest.raises(ad.ArgumentError, match="node name must be a string"):
            ad.Variable(1.0, name=3)  # type: ignore[arg-type]
        with pytest.raises(ad.ArgumentError, match="got no parameters"):
            ad.optim.SGD([], lr=0.1)
