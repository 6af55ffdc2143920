"""Every kind of request can be carried out and described: a new kind without a handler or a text fails here,
not when the first such request arrives."""

from __future__ import annotations

from retention.requests.kinds import KIND_TEXT, RequestKind
from retention.requests.service import HANDLERS


def test_every_kind_has_a_handler_and_a_text() -> None:
    assert set(HANDLERS) == set(RequestKind)
    assert set(KIND_TEXT) == set(RequestKind)
