"""The kinds of subject request and the states a request goes through."""

from __future__ import annotations

from enum import StrEnum


class RequestKind(StrEnum):
    ERASURE = "erasure"
    MARKETING_OBJECTION = "marketing_objection"
    ACCESS = "access"
    RESTRICTION = "restriction"
    LIFT_RESTRICTION = "lift_restriction"


class RequestStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


ARTICLE = {
    RequestKind.ERASURE: "Art 17",
    RequestKind.MARKETING_OBJECTION: "Art 21(2)",
    RequestKind.ACCESS: "Art 15, 20",
    RequestKind.RESTRICTION: "Art 18",
    RequestKind.LIFT_RESTRICTION: "Art 18(3)",
}
"""The GDPR article each kind of request exercises, cited from here by receipts, the ledger and the CLI."""

SUPPRESSION_ARTICLE = "Art 21(3)"
"""After an objection to direct marketing the data is no longer processed for it: the suppression list."""

RECIPIENTS_ARTICLE = "Art 19"
"""Recipients are told of an erasure, a rectification or a restriction."""

KIND_NAME = {
    RequestKind.ERASURE: "erasure",
    RequestKind.MARKETING_OBJECTION: "objection to marketing",
    RequestKind.ACCESS: "access and portability",
    RequestKind.RESTRICTION: "restriction",
    RequestKind.LIFT_RESTRICTION: "lifting a restriction",
}

KIND_TEXT = {kind: f"{KIND_NAME[kind]} ({ARTICLE[kind]})" for kind in RequestKind}


def kind_heading(kind: RequestKind) -> str:
    """The kind's text as the start of a sentence."""
    text = KIND_TEXT[kind]
    return text[0].upper() + text[1:]
