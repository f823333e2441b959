"""``[[tools]]`` entries and the models' ``tools``: every mistake is a ConfigError naming it."""

from __future__ import annotations

from pathlib import Path

import pytest

from rtserver.config import DEMO_MODELS, ConfigFile, build_settings, read_config_file
from rtserver.errors import ConfigError


def load(tmp_path: Path, text: str) -> ConfigFile:
    path = tmp_path / "rtserver.toml"
    path.write_text(text)
    return read_config_file(path)


def test_tools_and_a_model_that_uses_them_are_read(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
[limits]
max_tool_steps = 3

[[tools]]
id = "sums"
kind = "python"
function = "tests.unit.sample_tools:add"
approval = "ask"
timeout_s = 2.5

[[tools]]
id = "files"
kind = "mcp"
command = ["python", "-m", "files_server"]
env = { ROOT = "/srv" }
expose = ["read_file"]

[[tools]]
id = "search"
kind = "mcp"
url = "http://127.0.0.1:9000/mcp"

[[models]]
id = "helper"
provider = "demo"
tools = ["sums", "files", "search", "builtin"]
max_tool_steps = 1
""",
    )
    settings = build_settings(config, env={})
    assert [t.id for t in settings.tools] == ["sums", "files", "search"]
    sums = settings.tools[0]
    assert (sums.approval, sums.timeout_s) == ("ask", 2.5)
    assert settings.limits.max_tool_steps == 3
    helper = next(m for m in settings.models if m.id == "helper")
    assert helper.tools == ["sums", "files", "search", "builtin"]
    assert helper.max_tool_steps == 1


def test_the_demo_models_use_the_builtin_tools() -> None:
    assert all(model.tools == ["builtin"] for model in DEMO_MODELS)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('id = "a"\nkind = "python"', 'kind "python" needs `function = "module:callable"`'),
        ('id = "a"\nkind = "python"\nfunction = "no colon"', "module:callable"),
        ('id = "a"\nkind = "python"\nfunction = "m:f"\nurl = "http://x"', "`url` is for kind"),
        ('id = "a"\nkind = "mcp"', "either `command = \\[..\\]` or `url`"),
        ('id = "a"\nkind = "mcp"\ncommand = ["x"]\nurl = "http://x"', "either `command"),
        ('id = "a"\nkind = "mcp"\ncommand = []', "non-empty list"),
        ('id = "a"\nkind = "mcp"\nurl = "ftp://x"', "must start with http"),
        ('id = "a"\nkind = "mcp"\nurl = "http://x"\nenv = {A = "1"}', "`env` is for a `command`"),
        ('id = "a"\nkind = "mcp"\nurl = "http://x"\nfunction = "m:f"', "`function` is for kind"),
        ('id = "a"\nkind = "shell"', "Expected `str` matching|Invalid enum value"),
        ('id = "builtin"\nkind = "mcp"\nurl = "http://x"', "the built-in tools' own"),
        ('id = "a b"\nkind = "mcp"\nurl = "http://x"', "id"),
        ('id = "a"\nkind = "mcp"\nurl = "http://x"\ntimeout_s = 0', "timeout_s"),
        ('id = "a"\nkind = "mcp"\nurl = "http://x"\napproval = "maybe"', "approval"),
        ('id = "a"\nkind = "mcp"\nurl = "http://x"\nshell = true', "unknown field `shell`"),
        (
            'id = "a"\nkind = "python"\nfunction = "m:f"\nparameters = {type = "string"}',
            "JSON schema with type",
        ),
    ],
)
def test_a_bad_tools_entry_is_a_clear_error(tmp_path: Path, table: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, f"[[tools]]\n{table}\n")


def test_a_tool_id_configured_twice_is_an_error(tmp_path: Path) -> None:
    entry = '[[tools]]\nid = "twin"\nkind = "mcp"\nurl = "http://x"\n'
    with pytest.raises(ConfigError, match="tool id 'twin' is configured twice"):
        build_settings(load(tmp_path, entry * 2), env={})


def test_a_model_naming_an_unknown_tool_is_an_error(tmp_path: Path) -> None:
    config = load(tmp_path, '[[models]]\nid = "m"\nprovider = "demo"\ntools = ["nope"]\n')
    with pytest.raises(ConfigError, match="model 'm': tools names 'nope'"):
        build_settings(config, env={})


def test_max_tool_steps_is_bounded(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="max_tool_steps"):
        load(tmp_path, "[limits]\nmax_tool_steps = -1\n")
