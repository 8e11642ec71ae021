"""The FastAPI application: routers, error shape, request size limit, OpenAPI."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from roost import __version__
from roost.api.errors import install_error_handlers
from roost.api.routes import broker, platform, system

if TYPE_CHECKING:
    from roost.server.server import RoostServer

API_PREFIX = "/api/v1"


class BodyLimit:
    """Refuse request bodies over `limit` bytes with 413, declared or streamed."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await _too_large(send, self.limit)
                return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await _too_large(send, self.limit)


class _TooLarge(Exception):
    pass


async def _too_large(send: Send, limit: int) -> None:
    body = b'{"error":{"code":"payload_too_large","message":"request body over %d bytes"}}' % limit
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


def create_app(roost: RoostServer, admin_key: str) -> FastAPI:
    app = FastAPI(
        title="Roost API",
        version=__version__,
        description=(
            "Operate a Roost broker: tenants, devices, credentials, sessions, retained "
            "messages, publishing, streams. Authenticate with `Authorization: Bearer <key>`: "
            "the operator key (every tenant) or an application's API key (its tenant only)."
        ),
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
    )
    app.state.roost = roost
    app.state.admin_key = admin_key
    install_error_handlers(app)
    app.include_router(system.router, prefix=API_PREFIX)
    app.include_router(platform.router, prefix=API_PREFIX)
    app.include_router(broker.router, prefix=API_PREFIX)
    app.add_middleware(BodyLimit, limit=roost.config.api.max_request_bytes)
    return app
