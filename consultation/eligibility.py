"""Who in a consultation's audience may take part: an enum of its own module, importing nothing, so
`linli consultation create --help` can offer its values without loading the database layer
(tests/test_startup_imports.py). consultation.models re-exports it next to the tables that store it."""

from __future__ import annotations

from enum import StrEnum


class Eligibility(StrEnum):
    """Who in the audience may take part."""

    RESIDENTS = "residents"  # verified members who live in the community (the default)
    HOUSEHOLD_REPRESENTATIVES = "household_representatives"  # one voice per household
    MEMBERS = "members"  # every verified member, staff and unit contacts as well
