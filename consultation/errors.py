"""Refusals of the consultation services, in community.errors' style: English message ids the front end
translates for the reader."""

from __future__ import annotations

from community.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from i18n import N_


class ConsultationNotFound(NotFound):
    message = N_("That consultation no longer exists.")


class StatementNotFound(NotFound):
    message = N_("That statement no longer exists.")


class ConsultationNotAllowed(PermissionDenied):
    message = N_("Your role in this community does not allow running consultations.")


class NotEligible(PermissionDenied):
    message = N_("This consultation is for other residents of the community, so you cannot take part in it.")


class HouseholdTookPart(Conflict):
    message = N_(
        "Your household has already taken part through another representative: this consultation counts one "
        "voice per household."
    )


class ConsultationNotOpenYet(Conflict):
    message = N_("This consultation has not opened yet.")


class ConsultationClosed(Conflict):
    message = N_("This consultation has closed: it no longer takes votes or statements.")


class StatementsNotAllowed(Conflict):
    message = N_("This consultation does not take statements from participants, only votes.")


class EmptyStatement(ValidationFailed):
    message = N_("A statement needs some text.")


class StatementTooLong(ValidationFailed):
    message = N_("A statement can be at most %(limit)s characters long; this one has %(length)s.")

    def __init__(self, limit: int, length: int) -> None:
        super().__init__(limit=limit, length=length)


class DuplicateStatement(Conflict):
    """The same statement is already there; statement_id points to it, so the person can vote on it instead."""

    message = N_("That statement is already in this consultation (number %(statement_id)s): vote on it instead.")

    def __init__(self, statement_id: int) -> None:
        super().__init__(statement_id=statement_id)
        self.statement_id = statement_id


class HiddenDuplicateStatement(Conflict):
    """The same text is already there as someone else's statement that participants cannot see (waiting for a
    moderator, or rejected): refused without saying which, so typing a text reveals no hidden statement."""

    message = N_("This statement cannot be added as it is. Please put it in other words.")


class StatementNotVotable(Conflict):
    message = N_("This statement is not open for votes.")


class InvalidVote(ValidationFailed):
    message = N_("A vote is agree, disagree or pass.")


class RejectionReasonRequired(ValidationFailed):
    message = N_("Choose a reason for rejecting the statement: its author is told which one.")


class ClosesBeforeOpens(ValidationFailed):
    message = N_("The closing time must be after the opening time.")


class ClosingTimePassed(ValidationFailed):
    message = N_("That closing time has already passed. Choose a later one.")


class ExportNotAllowed(PermissionDenied):
    message = N_("Only the committee and the community's staff can export a consultation's outcome.")


class AudienceTooSmall(ValidationFailed):
    """Fewer people in the consultation's audience than k (community.anonymity): their votes could be told."""

    message = N_(
        "Audience now: %(audience)s. A consultation needs an audience of at least %(k)s people, so that no one's "
        "votes can be told from its figures. Choose more buildings or residents' groups, or the whole community."
    )

    def __init__(self, audience: int, k: int) -> None:
        super().__init__(audience=audience, k=k)
        self.audience = audience


class FiguresWithheld(Conflict):
    """Fewer voters than k (community.anonymity): the votes per pseudonym and per group are not shown yet."""

    message = N_(
        "Shown once at least %(k)s people have voted, so that no one's votes can be told (voters so far: %(voters)s)."
    )

    def __init__(self, voters: int, k: int) -> None:
        super().__init__(voters=voters, k=k)


class MapWithheld(FiguresWithheld):
    """Fewer voters than k: a picture of the map's groups could show where the few who voted stand."""

    message = N_(
        "The opinion map is shown once at least %(k)s people have voted, so that no one's position can be told "
        "(voters so far: %(voters)s)."
    )


class MapOnlyWhileOpen(Conflict):
    message = N_(
        "The current map is for open consultations. Once closed, each participant gets the map with the outcome."
    )
