"""The config file is validated with messages that name the problem; the environment adds models."""

from __future__ import annotations

from pathlib import Path

import pytest

from rtserver.config import (
    ANTHROPIC_ENV_MODEL,
    DEMO_MODELS,
    OPENAI_ENV_MODEL,
    ConfigFile,
    build_settings,
    read_config_file,
)
from rtserver.errors import ConfigError

EXAMPLE = Path(__file__).parents[2] / "rtserver.example.toml"


def load(tmp_path: Path, text: str) -> ConfigFile:
    path = tmp_path / "rtserver.toml"
    path.write_text(text)
    return read_config_file(path)


def ids(config: ConfigFile | None, env: dict[str, str]) -> list[str]:
    return [m.id for m in build_settings(config, env=env).models]


def test_a_full_config_is_read(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
[server]
host = "0.0.0.0"
port = 9000

[limits]
max_prompt_chars = 1000

[[models]]
id = "gpt"
provider = "openai"
model = "gpt-4o-mini"
label = "GPT-4o mini"
default = true
params = { temperature = 0.3, max_tokens = 800, system = "Be brief.", top_p = 0.9 }

[[models]]
id = "llama"
provider = "openai"
model = "llama3.2"
base_url = "http://127.0.0.1:11434/v1"
timeout_s = 300
""",
    )
    settings = build_settings(config, env={})

    assert (settings.host, settings.port, settings.limits.max_prompt_chars) == (
        "0.0.0.0",
        9000,
        1000,
    )
    assert [m.id for m in settings.models] == ["demo", "demo-fast", "gpt", "llama"]
    assert settings.default_model_ids() == ("gpt",)
    gpt = settings.models[2]
    assert gpt.params == {
        "temperature": 0.3,
        "max_tokens": 800,
        "system": "Be brief.",
        "top_p": 0.9,
    }
    assert gpt.key_env == "OPENAI_API_KEY"
    llama = settings.models[3]
    # A compatible server at a base_url needs no key unless one is named.
    assert llama.key_env is None
    assert llama.timeout_s == 300


def test_the_example_config_is_valid() -> None:
    settings = build_settings(read_config_file(EXAMPLE), env={})
    assert {m.provider for m in settings.models} == {"demo", "openai", "anthropic", "router"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("[[models]\nid = 1", "not valid TOML", id="malformed"),
        pytest.param(
            '[[models]]\nid = "x"\nprovider = "openai"\nmodel = "m"\ncolour = "red"',
            "unknown field `colour` - at `$.models[0]`",
            id="unknown-key",
        ),
        pytest.param(
            "[limits]\nmax_frame_bytes = 'big'",
            "Expected `int`, got `str` - at `$.limits.max_frame_bytes`",
            id="wrong-type",
        ),
        pytest.param(
            "[server]\nportt = 80", "unknown field `portt` - at `$.server`", id="unknown-server"
        ),
        pytest.param(
            '[[models]]\nid = "x"\nprovider = "cohere"\nmodel = "m"',
            "`$.models[0].provider`",
            id="unknown-provider",
        ),
        pytest.param(
            '[[models]]\nid = "x"\nprovider = "openai"',
            "model 'x' needs `model`, the vendor's model name",
            id="missing-model",
        ),
        pytest.param(
            '[[models]]\nid = "x"\nprovider = "openai"\nmodel = "m"\nbase_url = "localhost:11434"',
            "`base_url` must start with http:// or https://",
            id="base-url-scheme",
        ),
        pytest.param(
            '[[models]]\nid = "x"\nprovider = "openai"\nmodel = "m"\nparams = { temperature = 5 }',
            "params.temperature must be a number from 0 to 2",
            id="temperature",
        ),
        pytest.param(
            '[[models]]\nid = "x"\nprovider = "openai"\nmodel = "m"\n'
            'params = { max_tokens = "lots" }',
            "params.max_tokens must be a whole number of at least 1",
            id="max-tokens",
        ),
        pytest.param(
            '[[models]]\nid = "x"\nprovider = "openai"\nmodel = "m"\nparams = { stream = false }',
            "params.stream is set by rtserver and cannot be configured",
            id="reserved-param",
        ),
        pytest.param(
            '[[models]]\nid = "has space"\nprovider = "demo"',
            "`$.models[0].id`",
            id="bad-id",
        ),
    ],
)
def test_bad_config_names_the_problem(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    assert expected in str(caught.value)
    assert str(tmp_path / "rtserver.toml") in str(caught.value)


def test_a_key_put_where_its_variable_name_belongs_is_refused_without_repeating_it(
    tmp_path: Path,
) -> None:
    secret = "sk-proj-AbCdEf0123456789"
    text = f'[[models]]\nid = "x"\nprovider = "openai"\nmodel = "m"\napi_key_env = "{secret}"'
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    assert "`api_key_env` must be the name of an environment variable" in str(caught.value)
    assert secret not in str(caught.value)


def test_duplicate_model_ids_are_refused(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        '[[models]]\nid = "twin"\nprovider = "demo"\n\n[[models]]\nid = "twin"\nprovider = "demo"',
    )
    with pytest.raises(ConfigError, match="model id 'twin' is configured twice"):
        build_settings(config, env={})


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        read_config_file(tmp_path / "absent.toml")


def test_no_config_and_no_keys_gives_the_demo_models() -> None:
    settings = build_settings(None, env={})
    assert settings.models == DEMO_MODELS
    assert settings.default_model_ids() == ("demo",)


def test_keys_in_the_environment_add_default_models() -> None:
    settings = build_settings(None, env={"OPENAI_API_KEY": "sk-a", "ANTHROPIC_API_KEY": "sk-b"})

    assert [m.id for m in settings.models] == ["demo", "demo-fast", "openai", "anthropic"]
    openai, anthropic = settings.models[2:]
    assert (openai.provider, openai.model, openai.api_key_env, openai.base_url) == (
        "openai",
        OPENAI_ENV_MODEL,
        "OPENAI_API_KEY",
        None,
    )
    assert (anthropic.provider, anthropic.model, anthropic.api_key_env) == (
        "anthropic",
        ANTHROPIC_ENV_MODEL,
        "ANTHROPIC_API_KEY",
    )
    # Detected models are offered, never defaults: prompts go to demo unless a file says so.
    assert settings.default_model_ids() == ("demo",)


def test_base_url_and_model_of_detected_models_come_from_the_environment() -> None:
    env = {
        "OPENAI_API_KEY": "sk-a",
        "OPENAI_BASE_URL": "http://127.0.0.1:8000/v1",
        "RTSERVER_OPENAI_MODEL": "qwen2.5",
    }
    [*_, openai] = build_settings(None, env=env).models
    assert (openai.model, openai.base_url, openai.label) == (
        "qwen2.5",
        "http://127.0.0.1:8000/v1",
        "OpenAI qwen2.5",
    )


def test_a_bad_base_url_variable_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="OPENAI_BASE_URL must start with http"):
        build_settings(None, env={"OPENAI_API_KEY": "sk-a", "OPENAI_BASE_URL": "nowhere"})


def test_an_empty_key_variable_adds_nothing() -> None:
    assert ids(None, {"OPENAI_API_KEY": ""}) == ["demo", "demo-fast"]


def test_a_configured_model_with_the_same_key_replaces_the_detected_one(tmp_path: Path) -> None:
    config = load(tmp_path, '[[models]]\nid = "gpt5"\nprovider = "openai"\nmodel = "gpt-5"')
    env = {"OPENAI_API_KEY": "sk-a", "ANTHROPIC_API_KEY": "sk-b"}

    settings = build_settings(config, env=env)

    assert [m.id for m in settings.models] == ["demo", "demo-fast", "gpt5", "anthropic"]
    # Nothing was marked default in the file: demo stays the default.
    assert settings.default_model_ids() == ("demo",)


def test_defaults_marked_in_the_file_win_over_detected_models(tmp_path: Path) -> None:
    config = load(tmp_path, '[[models]]\nid = "local"\nprovider = "demo"\ndefault = true')
    settings = build_settings(config, env={"ANTHROPIC_API_KEY": "sk-b"})
    assert "anthropic" in [m.id for m in settings.models]
    assert settings.default_model_ids() == ("local",)


def test_detection_and_demo_models_can_be_turned_off(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        "[server]\nenv_models = false\ndemo_models = false\n\n"
        '[[models]]\nid = "only"\nprovider = "anthropic"\nmodel = "claude-haiku-4-5"',
    )
    assert ids(config, {"OPENAI_API_KEY": "sk-a"}) == ["only"]


def test_no_models_at_all_is_an_error(tmp_path: Path) -> None:
    config = load(tmp_path, "[server]\ndemo_models = false")
    with pytest.raises(ConfigError, match="no models are configured"):
        build_settings(config, env={})
