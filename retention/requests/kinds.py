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


KIND_TEXT = {
    RequestKind.ERASURE: "erasure (Art 17)",
    RequestKind.MARKETING_OBJECTION: "objection to marketing (Art 21(2))",
    RequestKind.ACCESS: "access and portability (Art 15, 20)",
    RequestKind.RESTRICTION: "restriction (Art 18)",
    RequestKind.LIFT_RESTRICTION: "lifting a restriction (Art 18(3))",
}
