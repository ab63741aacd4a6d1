"""The typed dependency routes use to reach the sender's use cases."""

from __future__ import annotations

from typing import Annotated

from services.sender.usecases import Sender
from shared.service import provided

SenderDep = Annotated[Sender, provided(Sender)]
