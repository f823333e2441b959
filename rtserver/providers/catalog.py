"""The models a server offers: each configured model with its provider."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from rtserver.config import ModelSpec, check_routers
from rtserver.protocol.frames import ModelInfo
from rtserver.providers.base import Provider


@dataclass(frozen=True, slots=True)
class Model:
    """A model as rooms use it."""

    spec: ModelSpec
    provider: Provider
    info: ModelInfo

    @property
    def id(self) -> str:
        return self.spec.id


class Catalog:
    """Models by id, and the ones a prompt without ``models`` goes to."""

    def __init__(self, models: Iterable[Model], *, defaults: Iterable[str]) -> None:
        self._models = {m.id: m for m in models}
        self.defaults = tuple(defaults)
        self.infos = [m.info for m in self._models.values()]

    @classmethod
    def build(
        cls,
        specs: Iterable[ModelSpec],
        *,
        defaults: Iterable[str],
        make_provider: Callable[[ModelSpec], Provider],
        overrides: Mapping[str, Provider] | None = None,
    ) -> Catalog:
        """Create each model's provider (``overrides`` wins, for tests and embedding).

        Routers are checked here too (ConfigError), for settings made without a config file.
        """
        specs = tuple(specs)
        check_routers({spec.id: spec for spec in specs})
        defaults = tuple(defaults)
        overrides = overrides or {}
        models = []
        for spec in specs:
            provider = overrides.get(spec.id) or make_provider(spec)
            info = ModelInfo(
                id=spec.id,
                label=spec.display_label,
                provider=spec.provider,
                simulated=spec.provider == "demo",
                default=spec.id in defaults,
            )
            models.append(Model(spec=spec, provider=provider, info=info))
        return cls(models, defaults=defaults)

    def get(self, model_id: str) -> Model | None:
        return self._models.get(model_id)

    def __contains__(self, model_id: object) -> bool:
        return model_id in self._models

    async def aclose(self) -> None:
        """Close every provider's clients."""
        await asyncio.gather(*(m.provider.aclose() for m in self._models.values()))
