"""What joining tells people other than the one in the chat, as notifications (community.notify): a join
request to every worker who may decide it, its decision to the requester, and the other workers' copies of the
request changed to say who decided and how. Plain values; the bot ring renders them in each reader's language."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from community.models import JoinRequestStatus


@dataclass(frozen=True, slots=True)
class JoinRequestNotice:
    """A join request as a worker sees it: waiting (with Approve / Reject), or decided, by whom and how."""

    request_id: int
    community: str
    timezone: str
    name: str
    household_label: str
    created_at: datetime
    phone: str | None  # only for workers who may see phone numbers
    status: JoinRequestStatus = JoinRequestStatus.PENDING
    decided_by: str | None = None  # the worker's name, once decided

    @property
    def awaits_decision(self) -> bool:
        return self.status == JoinRequestStatus.PENDING


@dataclass(frozen=True, slots=True)
class JoinDecided:
    """To the requester: welcome to the household, or not and why."""

    community: str
    timezone: str
    approved: bool
    household: str | None = None  # where they now live, when approved
    reason_message: str | None = None  # a tapped reason, as a message id to translate
    free_reason: str | None = None  # a reason typed at the terminal


def request_topic(request_id: int, *, with_phone: bool) -> str:
    """The workers' copies of one join request share a topic (one for those who see the phone number, one for
    the others): once one decides, the others change."""
    return f"join_request:{request_id}" if with_phone else f"join_request:{request_id}:masked"
