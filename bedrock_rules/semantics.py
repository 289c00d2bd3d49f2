"""What conditions and expressions mean: exact arithmetic, absent fields, canonical text.

The compiler turns conditions and derived quantities into closures with these
functions; the interpreter, the checker and the explainer read and describe them with
the same ones, so a condition means one thing everywhere. Rule text is interpreted by
walking the model, never handed to `eval`.
"""

from __future__ import annotations

import decimal
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Any, cast

from . import fields as t
from . import model as m

# Exact arithmetic: a result that cannot be represented exactly raises, never rounds.
EXACT = decimal.Context(
    prec=120,
    Emax=decimal.MAX_EMAX,
    Emin=decimal.MIN_EMIN,
    traps=[decimal.Inexact, decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow],
)
# Inside ceil() and floor() a quotient need not terminate (`ceil(characters / 1000)`), so
# their argument is computed in fractions, exactly, and only the integer part is kept: a
# rounding context would cut a large product short, or put 1/3 * 3 just under 1.
# A number whose exponent is past this bound would be an integer of that many digits.
_MAX_FRACTION_EXPONENT = 10_000

RESERVED_FIELDS = frozenset({"kind", "name", "provider", "at"})
FUNCTIONS = {"ceil": 1, "floor": 1, "max": None, "min": None}
ROUNDING_MODES = {
    "half_up": decimal.ROUND_HALF_UP,
    "half_even": decimal.ROUND_HALF_EVEN,
    "up": decimal.ROUND_UP,
    "down": decimal.ROUND_DOWN,
}


def exact_sum(amounts: Iterable[Decimal]) -> Decimal:
    """A sum in the exact context: the default context would round past 28 digits."""
    total = Decimal(0)
    for amount in amounts:
        total = EXACT.add(total, amount)
    return total


class Missing(Exception):
    """An optional field the usage left out: conditions that need it do not hold."""


Values = Mapping[str, Any]
Predicate = Callable[[Values], bool]



def to_plain(value: m.Value) -> Any:
    """A value written in a rule file as the plain data a usage document would hold."""
    if isinstance(value, m.Word):
        return {"true": True, "false": False}.get(value.text, value.text)
    if isinstance(value, m.Number):
        number = value.value
        return int(number) if number == number.to_integral_value() and "." not in str(number) else number
    if isinstance(value, m.Text):
        return value.text
    if isinstance(value, m.ListValue):
        return [to_plain(v) for v in value.items]
    if isinstance(value, m.DateValue):
        return value.text  # as a usage document writes a date
    return {k: to_plain(v) for k, v in value.pairs}


def describe(cond: m.Condition) -> str:
    """A condition as canonical text: stable ids, explanations and messages use it."""
    if isinstance(cond, m.Equals):
        return f"{cond.field} {'!=' if cond.negated else '='} {_value_text(cond.value)}"
    if isinstance(cond, m.Member):
        return f"{cond.field} {'not in' if cond.negated else 'in'} {', '.join(cond.values)}"
    if isinstance(cond, m.Contains):
        return f"{cond.field} contains {_value_text(cond.value)}"
    if isinstance(cond, m.Compare):
        return f"{describe_expr(cond.left)} {cond.op} {describe_expr(cond.right)}"
    if isinstance(cond, m.AllOf):
        return " and ".join(_grouped(p) for p in cond.parts)
    if isinstance(cond, m.AnyOf):
        return " or ".join(_grouped(p) for p in cond.parts)
    return f"not {_grouped(cond.part)}"


def _grouped(cond: m.Condition) -> str:
    return f"({describe(cond)})" if isinstance(cond, (m.AllOf, m.AnyOf)) else describe(cond)


def _value_text(value: m.Value) -> str:
    return value.text if isinstance(value, (m.Word, m.Text)) else str(getattr(value, "value", value))


_LEVEL = {"+": 1, "-": 1, "*": 2, "/": 2}


def describe_expr(expr: m.Expr) -> str:
    if isinstance(expr, m.Number):
        return str(expr.value)
    if isinstance(expr, m.FieldRef):
        return expr.name
    if isinstance(expr, m.Binary):
        # Parentheses where the tree needs them, so that two different expressions never
        # read the same: `2 * (x - 1)`, `a - (b - c)`; operators are left-associative.
        level = _LEVEL[expr.op]
        left, right = describe_expr(expr.left), describe_expr(expr.right)
        if isinstance(expr.left, m.Binary) and _LEVEL[expr.left.op] < level:
            left = f"({left})"
        if isinstance(expr.right, m.Binary) and _LEVEL[expr.right.op] <= level:
            right = f"({right})"
        return f"{left} {expr.op} {right}"
    if isinstance(expr, m.Call):
        return f"{expr.function}({', '.join(describe_expr(a) for a in expr.args)})"
    return f"sum({describe_expr(expr.body)} for each {expr.list_field})"


def fields_of(cond: m.Condition) -> set[str]:
    """The fields and quantities a condition reads."""
    if isinstance(cond, (m.AllOf, m.AnyOf)):
        return set().union(*(fields_of(p) for p in cond.parts))
    if isinstance(cond, m.Not):
        return fields_of(cond.part)
    if isinstance(cond, m.Compare):
        return expr_fields(cond.left) | expr_fields(cond.right)
    return {str(cond.field)}


def expr_fields(expr: m.Expr) -> set[str]:
    """The fields and quantities an expression reads."""
    if isinstance(expr, m.FieldRef):
        return {str(expr.name)}
    if isinstance(expr, m.Binary):
        return expr_fields(expr.left) | expr_fields(expr.right)
    if isinstance(expr, m.Call):
        return set().union(set(), *(expr_fields(a) for a in expr.args))
    if isinstance(expr, m.SumEach):
        return {str(expr.list_field)}
    return set()


def conjuncts(conditions: Iterable[m.Condition]) -> list[m.Condition]:
    """`a and b` as its parts, so a message names only the parts that fail."""
    parts: list[m.Condition] = []
    for cond in conditions:
        parts.extend(conjuncts(cond.parts) if isinstance(cond, m.AllOf) else [cond])
    return parts


def failing_conditions(conditions: Sequence[m.Condition], fields: Sequence[t.FieldSpec], values: Values) -> list[str]:
    """The conditions (of a rule) that a usage does not meet, each with the usage's value."""
    types_ = {f.name: f.type for f in fields}
    failing = []
    for cond in conjuncts(conditions):
        if compile_condition(cond, types_)(values):
            continue
        shown = []
        for name in sorted(fields_of(cond)):
            value = values.get(name)
            shown.append(f"{name} is not given" if value is None else f"{name} is {_shown_value(value)}")
        text = describe(cond)
        if isinstance(cond, m.Equals) and isinstance(types_.get(cond.field), t.ListOf):
            text = f"{cond.field} {'does not contain' if cond.negated else 'contains'} {_value_text(cond.value)}"
        failing.append(f"{text} ({'; '.join(shown)})")
    return failing


def _shown_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_shown_value(v) for v in value) + "]"
    return str(value)



# Conditions and expressions as closures -------------------------------------------


def all_of(conditions: Sequence[m.Condition], fields: Sequence[t.FieldSpec]) -> Predicate:
    """One predicate holding when every condition holds, for a kind with these fields."""
    types_ = {f.name: f.type for f in fields}
    preds = [compile_condition(c, types_) for c in conditions]
    if not preds:
        return lambda values: True
    if len(preds) == 1:
        return preds[0]
    return lambda values: all(p(values) for p in preds)


def _typed(text: str, field_type: t.FieldType | None) -> Any:
    if isinstance(field_type, t.ListOf):
        field_type = field_type.item
    if field_type is None:
        return str(text)
    return t.literal(field_type, str(text))  # plain text: compared with usage values on the hot path


def compile_condition(cond: m.Condition, types_: Mapping[str, t.FieldType]) -> Predicate:
    """A condition as a predicate over a usage's checked values."""
    if isinstance(cond, m.AllOf):
        parts = [compile_condition(p, types_) for p in cond.parts]
        return lambda v: all(p(v) for p in parts)
    if isinstance(cond, m.AnyOf):
        parts = [compile_condition(p, types_) for p in cond.parts]
        return lambda v: any(p(v) for p in parts)
    if isinstance(cond, m.Not):
        # A condition on a field the usage leaves out does not hold, negated or not:
        # `not steps > 50` needs steps as much as `steps <= 50` does. So a `require`
        # (refuse when not …) does not apply to a usage without the fields it reads.
        inner = compile_condition(cond.part, types_)
        needed = tuple(fields_of(cond.part))
        return lambda v: all(name in v for name in needed) and not inner(v)
    if isinstance(cond, m.Compare):
        left, right = compile_expr(cond.left, EXACT), compile_expr(cond.right, EXACT)
        compare = _COMPARISONS[cond.op]

        def compared(v: Values) -> bool:
            try:
                return compare(left(v), right(v))
            except Missing:
                return False

        return compared
    field = str(cond.field)  # plain text: a str subclass as a key slows every dict lookup
    field_type = types_.get(field)
    listed = isinstance(field_type, t.ListOf)
    if isinstance(cond, m.Member):
        wanted = frozenset(_typed(x, field_type) for x in cond.values)
        negated = cond.negated
        if listed:
            return lambda v: field in v and (not wanted.isdisjoint(v[field])) != negated
        return lambda v: field in v and (v[field] in wanted) != negated
    target = _typed(cast(m.Texted, cond.value).text, field_type)
    if isinstance(cond, m.Contains) or listed:
        negated = isinstance(cond, m.Equals) and cond.negated
        return lambda v: field in v and (target in v[field]) != negated
    if cond.negated:
        return lambda v: field in v and v[field] != target
    return lambda v: field in v and v[field] == target


_COMPARISONS = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def compile_expr(expr: m.Expr, ctx: decimal.Context) -> Callable[[Values], Any]:
    """An expression as a function of a usage's checked values; raises Missing for an absent field."""
    if isinstance(expr, m.Number):
        number = expr.value
        constant = int(number) if number == number.to_integral_value() else number
        return lambda v: constant
    if isinstance(expr, m.FieldRef):
        name = str(expr.name)

        def read(v: Values) -> Any:
            try:
                return v[name]
            except KeyError:
                raise Missing(name) from None

        return read
    if isinstance(expr, m.Binary):
        left, right = compile_expr(expr.left, ctx), compile_expr(expr.right, ctx)
        if expr.op == "/":
            return lambda v: ctx.divide(Decimal(left(v)), Decimal(right(v)))
        operation = {"+": ctx.add, "-": ctx.subtract, "*": ctx.multiply}[expr.op]
        integral = {"+": int.__add__, "-": int.__sub__, "*": int.__mul__}[expr.op]

        def arithmetic(v: Values) -> Any:
            a, b = left(v), right(v)
            if type(a) is int and type(b) is int:
                return integral(a, b)
            return operation(a, b)

        return arithmetic
    if isinstance(expr, m.Call):
        if expr.function in ("ceil", "floor"):
            return _compile_integral(expr)
        args = [compile_expr(a, ctx) for a in expr.args]
        pick = max if expr.function == "max" else min
        return lambda v: pick(a(v) for a in args)
    body = compile_expr(expr.body, ctx)
    list_field = str(expr.list_field)

    def summed(v: Values) -> Any:
        total: Any = 0
        for record in v.get(list_field, ()):
            value = body({**v, **record})
            total = total + value if type(total) is int and type(value) is int else ctx.add(total, value)
        return total

    return summed


def _compile_integral(call: m.Call) -> Callable[[Values], int]:
    """`ceil(…)` or `floor(…)`: the argument in exact fractions, then its integer part."""
    arg = _compile_fraction(call.args[0])
    integral = math.ceil if call.function == "ceil" else math.floor
    return lambda v: int(integral(arg(v)))


def _fraction(value: Any) -> Fraction | int:
    if type(value) is int:
        return value
    number = Decimal(value)
    if not number.is_finite() or abs(number.adjusted()) > _MAX_FRACTION_EXPONENT:
        raise decimal.Overflow  # a DecimalException: refused as "cannot be computed exactly"
    return Fraction(number)


def _compile_fraction(expr: m.Expr) -> Callable[[Values], Fraction | int]:
    """An expression as a function giving an exact fraction (an int when integral)."""
    if isinstance(expr, m.Number):
        constant = _fraction(expr.value)
        return lambda v: constant
    if isinstance(expr, m.FieldRef):
        read = compile_expr(expr, EXACT)
        return lambda v: _fraction(read(v))
    if isinstance(expr, m.Binary):
        left, right = _compile_fraction(expr.left), _compile_fraction(expr.right)
        if expr.op == "/":

            def quotient(v: Values) -> Fraction:
                divisor = right(v)
                if divisor == 0:
                    raise decimal.DivisionByZero
                return Fraction(left(v)) / divisor

            return quotient
        operation = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}[expr.op]
        return lambda v: operation(left(v), right(v))
    if isinstance(expr, m.Call):
        if expr.function in ("ceil", "floor"):
            return _compile_integral(expr)
        args = [_compile_fraction(a) for a in expr.args]
        pick = max if expr.function == "max" else min
        return lambda v: pick(a(v) for a in args)
    body = _compile_fraction(expr.body)
    list_field = str(expr.list_field)
    return lambda v: sum((body({**v, **record}) for record in v.get(list_field, ())), 0)
