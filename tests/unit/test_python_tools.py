"""Function tools (rtserver/tools/python.py), the built-in tools and the toolbox."""

from __future__ import annotations

import threading

import pytest

from rtserver.config import ToolConfig
from rtserver.errors import ConfigError
from rtserver.tools.base import ToolError
from rtserver.tools.builtin import calculator, clock
from rtserver.tools.python import FunctionTool, PythonSource, result_text
from rtserver.tools.toolbox import Toolbox
from tests.unit import sample_tools


def python_config(function: str, **fields: object) -> ToolConfig:
    return ToolConfig(id="t", kind="python", function=function, **fields)  # type: ignore[arg-type]


def test_the_schema_comes_from_the_signature_and_the_docstring() -> None:
    spec = FunctionTool(sample_tools.add).spec
    assert spec.name == "add"
    assert spec.description == "Add two numbers."
    assert spec.parameters == {
        "type": "object",
        "properties": {
            "a": {"type": "integer", "description": "the first number"},
            "b": {"type": "integer", "default": 2, "description": "the second number"},
            "note": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
        },
        "required": ["a"],
        "additionalProperties": False,
    }


def test_the_config_may_name_and_describe_the_tool_and_give_its_schema() -> None:
    schema: dict[str, object] = {"type": "object", "properties": {"a": {"type": "integer"}}}
    source = PythonSource(
        python_config(
            "tests.unit.sample_tools:add", name="plus", description="Adds.", parameters=schema
        )
    )
    (tool,) = source.tools()
    assert (tool.spec.name, tool.spec.description, tool.spec.parameters) == (
        "plus",
        "Adds.",
        schema,
    )


async def test_arguments_are_checked_against_the_signature() -> None:
    tool = FunctionTool(sample_tools.add)
    assert await tool.call({"a": 40}) == "42"
    for bad in ({"a": "forty"}, {}, {"a": 1, "rm": True}):
        with pytest.raises(ToolError) as refused:
            await tool.call(bad)
        assert refused.value.code == "bad_arguments"


async def test_an_async_tool_is_awaited_and_a_non_text_result_is_sent_as_json() -> None:
    tool = FunctionTool(sample_tools.slow_echo)
    assert await tool.call({"text": "hi 🙂"}) == '{"echo":"hi 🙂","items":[1,2]}'


async def test_a_plain_function_runs_off_the_event_loop() -> None:
    name = await FunctionTool(sample_tools.thread_name).call({})
    assert name != threading.current_thread().name


async def test_an_exception_becomes_failed_naming_only_its_kind() -> None:
    with pytest.raises(ToolError) as failed:
        await FunctionTool(sample_tools.leaks).call({"path": "/etc"})
    assert failed.value.code == "failed"
    assert failed.value.message == "the tool raised PermissionError"


@pytest.mark.parametrize(
    ("function", "message"),
    [
        ("tests.unit.no_such_module:add", "cannot import"),
        ("tests.unit.sample_tools:nothing", "names nothing"),
        ("tests.unit.sample_tools:NOT_CALLABLE", "not callable"),
    ],
)
def test_a_function_that_cannot_be_loaded_is_a_config_error(function: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        PythonSource(python_config(function))


def test_result_text_falls_back_to_str_for_what_json_cannot_hold() -> None:
    assert result_text("plain") == "plain"
    assert result_text([1, "a"]) == '[1,"a"]'
    assert result_text(threading.Lock).startswith("<built-in function")


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("(2 + 3) * 4", "20"),
        ("17*23", "391"),
        ("7 / 2", "3.5"),
        ("-2 ** 2", "-4"),
        ("10 // 3", "3"),
    ],
)
def test_the_calculator_does_arithmetic(expression: str, value: str) -> None:
    assert calculator(expression) == value


@pytest.mark.parametrize(
    "expression",
    [
        "__import__('os').system('id')",
        "().__class__",
        "9 ** 9 ** 9",
        "10 ** 99 * 10 ** 99",
        "1e308 * 10",
        "x" * 1000,
        "True + 1",
        "",
        "[1] * 10",
    ],
)
def test_the_calculator_refuses_what_is_not_small_arithmetic(expression: str) -> None:
    with pytest.raises(ToolError) as refused:
        calculator(expression)
    assert refused.value.code == "bad_arguments"


def test_the_calculator_reports_a_division_by_zero() -> None:
    with pytest.raises(ToolError) as failed:
        calculator("1 / 0")
    assert failed.value.code == "failed"


def test_the_clock_tells_utc_time_in_iso_8601() -> None:
    assert clock().endswith("+00:00")


def test_the_toolbox_offers_a_model_the_tools_of_its_entries_in_order() -> None:
    toolbox = Toolbox.build(
        [
            python_config("tests.unit.sample_tools:add"),
            ToolConfig(
                id="other",
                kind="python",
                function="tests.unit.sample_tools:slow_echo",
                approval="ask",
                timeout_s=3,
            ),
        ]
    )
    tools = toolbox.for_model(["other", "builtin", "missing"])
    assert [spec.name for spec in tools.specs] == ["slow_echo", "calculator", "clock"]
    echo = tools.get("slow_echo")
    assert echo is not None
    assert (echo.source, echo.approval, echo.timeout_s) == ("other", "ask", 3)
    assert tools.get("add") is None
    assert len(toolbox.for_model([])) == 0


def test_a_name_offered_twice_goes_to_the_first_entry() -> None:
    toolbox = Toolbox.build(
        [
            ToolConfig(
                id="a", kind="python", function="tests.unit.sample_tools:add", name="calculator"
            )
        ]
    )
    first = toolbox.for_model(["a", "builtin"]).get("calculator")
    assert first is not None
    assert first.source == "a"
