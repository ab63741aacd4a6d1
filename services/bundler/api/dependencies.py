"""The typed dependency routes use to reach the bundler's use cases."""

from __future__ import annotations

from typing import Annotated

from services.bundler.usecases import Bundler, Flow
from shared.service import provided

BundlerDep = Annotated[Bundler, provided(Bundler)]

FlowDep = Annotated[Flow, provided(Flow)]
