"""The built-in tools (id ``builtin``): a calculator and a clock, so the loop runs with no key.

The calculator evaluates arithmetic only (numbers, + - * / // % ** and parentheses) by walking
the parsed expression; nothing is ever passed to ``eval``, and sizes are bounded so that a
hostile expression cannot make the server compute for long.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from rtserver.config import BUILTIN_TOOLS
from rtserver.tools.base import Tool, ToolError
from rtserver.tools.python import FunctionTool

#: Longest expression read, and the largest exponent and operands allowed.
MAX_EXPRESSION_CHARS = 200
MAX_EXPONENT = 100
MAX_MAGNITUDE = 10**100

_BINARY: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}


def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression and return its value.

    Args:
        expression: numbers with + - * / // % ** and parentheses, e.g. "(2 + 3) * 4"
    """
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise ToolError("bad_arguments", f"expressions are at most {MAX_EXPRESSION_CHARS} chars")
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError:
        raise ToolError("bad_arguments", "not an arithmetic expression") from None
    try:
        value = _evaluate(tree.body)
    except ZeroDivisionError:
        raise ToolError("failed", "division by zero") from None
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return str(value)


def _evaluate(node: ast.expr) -> float:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        # bool is an int too, but True is not a number anyone typed.
        if isinstance(node.value, bool):
            raise ToolError("bad_arguments", "only numbers are allowed")
        return _bounded(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        operand = _evaluate(node.operand)
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise ToolError("bad_arguments", f"exponents are at most {MAX_EXPONENT}")
        return _bounded(_BINARY[type(node.op)](left, right))
    raise ToolError("bad_arguments", "only numbers, + - * / // % ** and parentheses are allowed")


def _bounded(value: float) -> float:
    if isinstance(value, complex) or abs(value) > MAX_MAGNITUDE:
        raise ToolError("bad_arguments", "the numbers grow too large")
    return value


def clock() -> str:
    """The current date and time in UTC, as ISO 8601."""
    return datetime.now(UTC).isoformat(timespec="seconds")


class BuiltinSource:
    """The ``builtin`` tools: ``calculator`` and ``clock``."""

    def __init__(self) -> None:
        self._tools: tuple[Tool, ...] = (FunctionTool(calculator), FunctionTool(clock))

    @property
    def id(self) -> str:
        return BUILTIN_TOOLS

    def tools(self) -> Sequence[Tool]:
        return self._tools

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None
