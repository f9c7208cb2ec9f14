"""Query parameters an endpoint does not take are refused, not silently ignored.

A misspelt parameter (``strat=`` for ``start=``) would otherwise be dropped, and the answer
would look right while answering another question. What an endpoint takes is read from
its FastAPI dependant: the endpoint's own query parameters and, recursively, those of its
dependencies (a parameter that a shared dependency declares, such as the read key's
``api_key``, is taken wherever that dependency is used); ``format`` is taken everywhere.
Nothing is listed by hand: a route is covered as soon as it is included.

Installed once on the application (:func:`install_strict`); it checks every ``/v1``
request before the route runs, and answers through the application's own handler of
domain errors (:class:`core.errors.UnknownParameter`, 400).
"""

from __future__ import annotations

from collections import OrderedDict
from urllib.parse import parse_qsl

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from core.errors import UnknownParameter

PREFIX = "/v1/"
ALWAYS_TAKEN = frozenset({"format"})
ROUTES_KEPT = 1024


def taken_parameters(dependant: Dependant) -> frozenset[str]:
    """The query parameter names of ``dependant`` and of its dependencies, recursively,
    with :data:`ALWAYS_TAKEN`."""
    names = set(ALWAYS_TAKEN)
    pending, seen = [dependant], set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        for field in current.query_params:
            model = field.field_info.annotation
            if isinstance(model, type) and issubclass(model, BaseModel):
                # A query-parameter model: each of its fields is a parameter.
                names.update(f.alias or name for name, f in model.model_fields.items())
            else:
                names.add(field.alias)
        pending.extend(current.dependencies)
    return frozenset(names)


def _matched(app: FastAPI, scope: Scope):
    """The route context routing will pick for this request (None: no full match)."""
    probe = {**scope, "method": "GET"} if scope["method"] == "HEAD" else scope
    for context in iter_route_contexts(app.routes):
        if context.matches(probe)[0] == Match.FULL:
            return context
    return None


class StrictQueryMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._taken: dict[int, tuple[Dependant, frozenset[str]]] = {}
        self._routes: OrderedDict[tuple[str, str], object] = OrderedDict()

    def _route(self, app: FastAPI, scope: Scope):
        """:func:`_matched`, remembered for the last :data:`ROUTES_KEPT` paths asked."""
        key = (scope["method"], scope["path"])
        if key in self._routes:
            self._routes.move_to_end(key)
            return self._routes[key]
        context = _matched(app, scope)
        self._routes[key] = context
        if len(self._routes) > ROUTES_KEPT:
            self._routes.popitem(last=False)
        return context

    def _taken_by(self, dependant: Dependant) -> frozenset[str]:
        known = self._taken.get(id(dependant))
        if known is None or known[0] is not dependant:
            known = (dependant, taken_parameters(dependant))
            self._taken[id(dependant)] = known
        return known[1]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        query = scope.get("query_string", b"") if scope["type"] == "http" else b""
        if not query or not scope["path"].startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        app = scope["app"]
        context = self._route(app, scope)
        dependant = getattr(context, "dependant", None) if context is not None else None
        if dependant is None:
            await self.app(scope, receive, send)
            return
        taken = self._taken_by(dependant)
        sent = dict.fromkeys(name for name, _ in parse_qsl(query.decode("latin-1"), True))
        unknown = [name for name in sent if name not in taken]
        if not unknown:
            await self.app(scope, receive, send)
            return
        endpoint = f"{scope['method']} {context.path}"
        error = UnknownParameter(unknown, sorted(taken), endpoint)
        response = await _answer(app, Request(scope, receive), error)
        await response(scope, receive, send)


async def _answer(app: FastAPI, request: Request, error: UnknownParameter):
    """The answer the application's own handler gives for ``error``."""
    for kind in type(error).__mro__:
        handler = app.exception_handlers.get(kind)
        if handler is not None:
            return await handler(request, error)
    detail = [{"field": error.field, "message": error.reason}]
    return JSONResponse({"error": type(error).__name__, "detail": detail}, status_code=400)


def install_strict(app: FastAPI) -> None:
    """Refuse unknown query parameters on every ``/v1`` route of ``app`` (once)."""
    if not any(m.cls is StrictQueryMiddleware for m in app.user_middleware):
        app.add_middleware(StrictQueryMiddleware)
