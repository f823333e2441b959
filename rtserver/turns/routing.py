"""The routers of a server, ready for the turns layer: which models are routers, and their choice.

Built once from the catalog. :meth:`Routing.choose` asks a router's classifier when it has one
(bounded by its timeout) and else applies its rules; :meth:`Routing.candidates` turns a choice
into the catalog's models, in the order a routed stream tries them.
"""

from __future__ import annotations

from rtserver.providers.catalog import Catalog, Model
from rtserver.turns.classifier import classify
from rtserver.turns.router import Choice, Router


class Routing:
    """Every router of a catalog, by id."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self._routers = {
            info.id: Router(model.spec)
            for info in catalog.infos
            if (model := catalog.get(info.id)) is not None and model.spec.is_router
        }
        self._labels = {info.id: info.label for info in catalog.infos}

    def is_router(self, model_id: str) -> bool:
        return model_id in self._routers

    def router(self, model_id: str) -> Router | None:
        return self._routers.get(model_id)

    async def choose(self, router_id: str, text: str) -> Choice:
        """The models to try for ``text``, in order, and why the first of them."""
        router = self._routers[router_id]
        classifier = self._catalog.get(router.classifier) if router.classifier else None
        if classifier is None:
            return router.choose(text)
        return await classify(
            router,
            text,
            classifier_id=classifier.id,
            provider=classifier.provider,
            labels=self._labels,
        )

    def first_choice(self, router_id: str, text: str) -> Choice:
        """The rules' choice, at once: for a stream stopped before its classifier answered."""
        return self._routers[router_id].choose(text)

    def candidates(self, choice: Choice) -> list[Model]:
        """The catalog's models of ``choice``, in order (config validation made each exist)."""
        return [m for m in (self._catalog.get(i) for i in choice.candidates) if m is not None]
