"""What every request handler works with, in one value: the estate, its configuration, the request, what was
read about the person, and who they are."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa

from retention.config.keys import Keyring
from retention.config.loading import EstateConfig
from retention.config.requests import RequestSettings
from retention.requests.model import SubjectRequest
from retention.requests.view import EstateView, Progress
from retention.storage.engines import Estate


@dataclass(frozen=True)
class PersonRequest:
    """One request being carried out for one person (`subjects`: their subject keys, at least one)."""

    config: EstateConfig
    estate: Estate
    keyring: Keyring
    settings: RequestSettings
    request: SubjectRequest
    view: EstateView
    subjects: frozenset[str]
    run_id: str
    moment: dt.datetime
    progress: Progress | None = None

    @property
    def control(self) -> sa.Engine:
        control = self.estate.control
        assert control is not None, "a request always runs with a control database"
        return control
