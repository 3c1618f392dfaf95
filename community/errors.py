"""Domain errors. Each carries an English message id (marked for extraction) and its parameters;
the front end translates it for the reader, so the domain never needs to know the reader's language."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from i18n import N_


class LinliError(Exception):
    """A refusal the person should read: message is a gettext message id with %(name)s placeholders."""

    message: str = N_("That did not work.")

    def __init__(self, message: str | None = None, **params: Any) -> None:
        if message is not None:
            self.message = message
        self.params: dict[str, Any] = params
        super().__init__(self.message % params if params else self.message)


class NotFound(LinliError):
    message = N_("That no longer exists.")


class PermissionDenied(LinliError):
    message = N_("Your role in this community does not allow that.")


class NotAMember(LinliError):
    message = N_("Join a community first: open your invitation link or send /start with your code.")


class ValidationFailed(LinliError):
    message = N_("That input is not valid.")


class InvalidCode(LinliError):
    message = N_("This invitation code is not valid. Check it and try again.")


class ExpiredCode(InvalidCode):
    message = N_("This invitation has expired. Ask your community worker for a new one.")


class UsedUpCode(InvalidCode):
    message = N_("This invitation has already been used. Ask your community worker for a new one.")


class Throttled(LinliError):
    message = N_("Too many wrong codes. Try again after %(until)s.")

    def __init__(self, until: datetime) -> None:
        super().__init__(until=until)
        self.until = until


class Conflict(LinliError):
    message = N_("That has already been done.")


# Notices (community/notices.py).


class EmptyNotice(ValidationFailed):
    message = N_("A notice needs some text.")


class NoticeTooLong(ValidationFailed):
    message = N_("A notice can be at most %(limit)s characters long; this one has %(length)s.")

    def __init__(self, limit: int, length: int) -> None:
        super().__init__(limit=limit, length=length)


class SendTimePassed(ValidationFailed):
    message = N_("That time has already passed. Choose a later time to send the notice.")


class NothingSelected(ValidationFailed):
    message = N_("Choose at least one building, group or role, or send the notice to the whole community.")


class UnknownBuilding(ValidationFailed):
    message = N_("This community has no building called %(building)s.")

    def __init__(self, building: str) -> None:
        super().__init__(building=building)


class UnknownResidentGroup(ValidationFailed):
    message = N_("This community has no residents' group called %(group)s.")

    def __init__(self, group: str) -> None:
        super().__init__(group=group)


class NoRecipients(ValidationFailed):
    message = N_("No one would receive this notice. Choose other buildings, groups or roles.")


class NoticeNotFound(NotFound):
    message = N_("That notice no longer exists.")


class NoticeAlreadySent(Conflict):
    message = N_("This notice has already gone out, so it can no longer be cancelled.")


class NoticeNotAllowed(PermissionDenied):
    message = N_("Your role in this community does not allow sending notices.")


class SensitiveAudienceNotAllowed(PermissionDenied):
    message = N_("Only staff who may see party membership can send a notice to party members.")
