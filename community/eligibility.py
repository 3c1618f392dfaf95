"""Who in a process's scope may act, as stored (a consultation's `eligibility` column): an enum of its own module
that imports nothing, so `linli consultation create --help` can offer its values without loading the database
layer (tests/test_startup_imports.py). What each one admits is community.scope's (eligibility_conditions): the SQL
filter and the single-person check come from there."""

from __future__ import annotations

from enum import StrEnum


class Eligibility(StrEnum):
    """Who in the scope may act (stored by value)."""

    RESIDENTS = "residents"  # verified members who live in the community (the default)
    HOUSEHOLD_REPRESENTATIVES = "household_representatives"  # one voice per household
    MEMBERS = "members"  # every verified member, staff and unit contacts as well

    @property
    def one_voice_per_household(self) -> bool:
        """Whether a household speaks once, whichever of its eligible members takes part first (a rule about who
        took part already, checked when someone joins in, not a condition on the member)."""
        return self is Eligibility.HOUSEHOLD_REPRESENTATIVES
