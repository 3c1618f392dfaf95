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
