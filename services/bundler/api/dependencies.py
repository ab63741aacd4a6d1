"""The typed dependency routes use to reach the bundler's use cases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.bundler.usecases import Bundler
from shared.service import Service


async def _bundler(request: Request) -> Bundler:
    """The use cases of the app's Service (a `Bundler` holds only references)."""
    service: Service = request.app.state.service
    return Bundler.of(service)


BundlerDep = Annotated[Bundler, Depends(_bundler)]
