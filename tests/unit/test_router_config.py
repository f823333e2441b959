"""Routers in the config file: validated at load with messages that name the fix, and listed."""

from __future__ import annotations

from pathlib import Path

import pytest

from rtserver.cli import main
from rtserver.config import Settings, build_settings, read_config_file
from rtserver.errors import ConfigError

GOOD = """
[[models]]
id = "auto"
provider = "router"
label = "Auto"
default = true
fallback = ["demo", "demo-fast"]
classifier = "demo-fast"
classifier_timeout_s = 0.5
routes = [
  { when = { contains_code = true }, model = "demo" },
  { when = { max_chars = 200 }, model = "demo-fast" },
  { when = { keywords = ["translate"] }, model = "demo" },
]
"""


def settings_of(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> Settings:
    return build_settings(read_config_file(_write(tmp_path, text)), env=env or {})


def test_a_router_is_a_model_without_a_provider_of_its_own(tmp_path: Path) -> None:
    settings = settings_of(tmp_path, GOOD)
    auto = next(m for m in settings.models if m.id == "auto")
    assert auto.is_router
    assert auto.key_env is None
    assert [r.model for r in auto.routes] == ["demo", "demo-fast", "demo"]
    assert auto.classifier_timeout_s == 0.5
    assert settings.default_model_ids() == ("auto",)


def test_several_routers_may_be_configured(tmp_path: Path) -> None:
    second = GOOD.replace('id = "auto"', 'id = "cheap"').replace("default = true", "")
    settings = settings_of(tmp_path, GOOD + second)
    assert [m.id for m in settings.models if m.is_router] == ["auto", "cheap"]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rtserver.toml"
    path.write_text(text)
    return path


ROUTER = '[[models]]\nid = "auto"\nprovider = "router"\n'


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("", "router 'auto' needs `fallback`"),
        ("fallback = []", "router 'auto' needs `fallback`"),
        ('routes = [{ model = "demo" }]', "router 'auto' needs `fallback`"),
        ('fallback = ["demo", "demo"]', "fallback names 'demo' more than once"),
        ('fallback = ["nope"]', "fallback names model 'nope', which is not configured"),
        (
            'fallback = ["demo"]\nroutes = [{ model = "gpt-5" }]',
            "routes names model 'gpt-5', which is not configured (models: demo, demo-fast)",
        ),
        ('fallback = ["demo"]\nclassifier = "tiny"', "classifier names model 'tiny'"),
        ('fallback = ["demo"]\nmodel = "gpt-4o"', "`model` belongs to the models it routes to"),
        ('fallback = ["demo"]\nbase_url = "http://x"', "`base_url` belongs to the models"),
        ('fallback = ["demo"]\nstamp = true', "`stamp` belongs to the models"),
        ('fallback = ["demo"]\nparams = { temperature = 1 }', "`params` belong to the models"),
        ('fallback = ["demo"]\ntools = ["builtin"]', "`tools` belongs to the models"),
        (
            'fallback=["demo"]\nroutes = [{ when = { min_chars = 9, max_chars = 3 }, model = "a"}]',
            "min_chars (9) is more than max_chars (3)",
        ),
        (
            'fallback = ["demo"]\nroutes = [{ when = { keywords = [" "] }, model = "demo" }]',
            "keywords must hold at least one word",
        ),
        (
            'fallback = ["demo"]\nroutes = [{ when = { colour = "red" }, model = "demo" }]',
            "unknown field `colour`",
        ),
        (
            'fallback = ["demo"]\nroutes = [{ when = { max_chars = -1 }, model = "demo" }]',
            "Expected `int` >= 0",
        ),
        ('fallback = ["demo"]\nroutes = [{ when = {} }]', "missing required field `model`"),
        ('fallback = ["demo"]\nclassifier_timeout_s = 0', "Expected `float` > 0"),
        ('fallback = ["demo"]\nclassifier_timeout_s = 1e9', "Expected `float` <= 60"),
        ('fallback = ["demo"]\nroutes = "code"', "Expected `array`, got `str`"),
    ],
)
def test_a_malformed_router_fails_at_load_naming_the_fix(
    tmp_path: Path, table: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_of(tmp_path, ROUTER + table)
    assert message in str(caught.value)


def test_a_router_may_not_route_to_a_router(tmp_path: Path) -> None:
    text = GOOD + '[[models]]\nid = "outer"\nprovider = "router"\nfallback = ["auto"]\n'
    with pytest.raises(ConfigError, match="router 'outer': fallback names 'auto', another router"):
        settings_of(tmp_path, text)


def test_routing_to_a_model_found_in_the_environment_works(tmp_path: Path) -> None:
    text = ROUTER + 'fallback = ["openai", "demo"]\n'
    settings = settings_of(tmp_path, text, env={"OPENAI_API_KEY": "sk-x"})
    assert "openai" in [m.id for m in settings.models]


@pytest.mark.parametrize(
    "table",
    [
        '[[models]]\nid = "demo2"\nprovider = "demo"\nfallback = ["demo"]\n',
        '[[models]]\nid = "demo2"\nprovider = "demo"\nroutes = [{ model = "demo" }]\n',
        '[[models]]\nid = "demo2"\nprovider = "demo"\nclassifier = "demo"\n',
    ],
)
def test_router_keys_on_another_model_are_refused(tmp_path: Path, table: str) -> None:
    with pytest.raises(ConfigError, match="is for routers"):
        settings_of(tmp_path, table)


def test_the_id_auto_is_kept_for_a_router(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'auto' is kept for a router"):
        settings_of(tmp_path, '[[models]]\nid = "auto"\nprovider = "demo"\n')


def test_rtserver_models_lists_routers_with_their_routes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RTSERVER_CONFIG", str(_write(tmp_path, GOOD)))
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    table, routers = out.split("\n\n", 1)
    auto_row = next(line for line in table.splitlines() if line.startswith("auto "))
    assert auto_row.split()[:5] == ["auto", "router", "-", "yes", "not"]
    assert routers.splitlines() == [
        "Routers (first matching route wins):",
        "auto:",
        "  1. code -> demo",
        "  2. <= 200 chars -> demo-fast",
        "  3. keywords translate -> demo",
        "  else -> demo; after a failure: demo, demo-fast",
        "  classifier demo-fast (asked first, 0.5s to answer)",
    ]


def test_a_malformed_router_stops_serve_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, ROUTER + 'fallback = ["missing"]\n')
    assert main(["serve", "--config", str(path), "--db", str(tmp_path / "x.db")]) == 2
    assert "fallback names model 'missing'" in capsys.readouterr().err
