"""The database's "too many connections" reaches a route as SQLAlchemy's generic
DBAPIError (the asyncpg dialect wraps it); it must answer 503 in our shape, like an
unreachable database, while other driver errors stay a 500 in our shape."""

from __future__ import annotations

import asyncpg
import httpx
import pytest
import sqlalchemy.exc
from fastapi import FastAPI

from shared.db import is_unavailable
from shared.errors import install_error_handlers


class _AdapterError(Exception):
    """Stands for the dialect's adapter error, which holds the driver's as its cause."""


def _wrapped(driver_error: Exception) -> sqlalchemy.exc.DBAPIError:
    adapter = _AdapterError(str(driver_error))
    adapter.__cause__ = driver_error
    return sqlalchemy.exc.DBAPIError("SELECT 1", None, adapter)


TOO_MANY = asyncpg.TooManyConnectionsError("sorry, too many clients already")


@pytest.mark.parametrize(
    ("error", "unavailable"),
    [
        (TOO_MANY, True),
        (_wrapped(TOO_MANY), True),
        (sqlalchemy.exc.DBAPIError("SELECT 1", None, TOO_MANY), True),
        (_wrapped(asyncpg.UniqueViolationError("duplicate key")), False),
        (ValueError("not a database error"), False),
        (sqlalchemy.exc.OperationalError("SELECT 1", None, ValueError("x")), True),
    ],
)
def test_is_unavailable(error: Exception, unavailable: bool) -> None:
    assert is_unavailable(error) is unavailable


def _app(error: Exception) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/boom")
    async def boom() -> None:
        raise error

    return app


async def _get(app: FastAPI) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get("/boom")


async def test_too_many_connections_answers_503_in_our_shape() -> None:
    response = await _get(_app(_wrapped(TOO_MANY)))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json()["message"] == "the database is unavailable; retry later"


async def test_another_driver_error_answers_500_in_our_shape_without_its_text() -> None:
    response = await _get(_app(_wrapped(asyncpg.UniqueViolationError("secret@example.fi"))))
    assert response.status_code == 500
    body = response.json()
    assert set(body) == {"error", "message", "details"}
    assert "secret" not in response.text
