"""What a feature declares about itself on the domain side: its actions and the roles that may take them by
default, its settings with their defaults, and what it holds about a person (a personal-data provider, which
/privacy shows and /forget calls).

The kernel defines these types and never imports a feature: each feature package exposes a ``Feature`` value
(consultation/feature.py; the kernel's own features in community/kernel_features.py), and the composition root
(bot/app.py) gathers them through the bot-side manifests (bot/manifest.py). A new feature adds an action as a
FeatureAction of its own, next to its services, and edits no table here."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from community.roles import Action, Role
from community.unit_of_work import UnitOfWork

if TYPE_CHECKING:
    # Only for the annotation: community.settings reaches community.permissions, which imports this module.
    from community import settings as per_community

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class FeatureAction:
    """An action a feature adds, with the roles that may take it unless a community says otherwise. ``value`` is
    its stable name ("feature.verb"): PermissionDenied and the audit log name it, like an Action's value."""

    value: str
    default_roles: frozenset[Role]


# What the permission checks (community.permissions) accept: the kernel's own actions and a feature's.
AnyAction = Action | FeatureAction


@dataclass(frozen=True, slots=True)
class Setting(Generic[T]):
    """A number or time a feature would otherwise bury in its code (a threshold, a reminder time): declared once
    with its default, read from the SettingValues the composition root makes of every feature's settings."""

    name: str  # "feature.what", unique among every feature's settings
    default: T
    description: str  # English message id, for the people who configure Linli


class SettingValues:
    """The value of every declared setting. Built once by the composition root from the features' declarations
    (defaults, then any overrides it is given); read-only afterwards."""

    def __init__(self, settings: Iterable[Setting[Any]] = (), overrides: Mapping[str, object] | None = None) -> None:
        values: dict[str, Any] = {}
        declared: dict[str, Setting[Any]] = {}
        for setting in settings:
            if setting.name in declared:
                raise ValueError(f"the setting {setting.name!r} is declared twice")
            declared[setting.name] = setting
            values[setting.name] = setting.default
        for name, value in (overrides or {}).items():
            if name not in declared:
                raise ValueError(f"no feature declares the setting {name!r}")
            if not isinstance(value, type(declared[name].default)):
                raise TypeError(f"the setting {name!r} takes a {type(declared[name].default).__name__}")
            values[name] = value
        self._values = values

    def __getitem__(self, setting: Setting[T]) -> T:
        if setting.name not in self._values:
            raise KeyError(f"the setting {setting.name!r} is not declared by any feature of this app")
        value: T = self._values[setting.name]  # checked against the default's type when it was set
        return value


class PersonalSection(Protocol):
    """What one feature holds about a person, as the person may read it: the bot ring renders it in /privacy and
    the export file carries as_json()."""

    def as_json(self) -> dict[str, Any]:
        """Plain JSON values: dates in ISO 8601, statuses by their stable names."""
        ...


class PersonalDataProvider(Protocol):
    """A feature's part in /privacy and /forget. ``key`` names its section in the export file."""

    @property
    def key(self) -> str: ...

    async def collect(self, uow: UnitOfWork, person_id: int) -> PersonalSection | None:
        """What the feature holds that leads to the person; None when it holds nothing."""
        ...

    async def erase(self, uow: UnitOfWork, person_id: int) -> None:
        """Erase or unlink the person's rows, in the caller's transaction; community.privacy.forget runs it
        before the person's own rows go, so a foreign key to person.id left behind fails loudly there."""
        ...


@dataclass(frozen=True, slots=True)
class Feature:
    """A feature's domain-side declaration. actions: every action its services check (the kernel's Action
    members it owns, or FeatureActions of its own); settings: its tunable numbers and times with defaults;
    personal_data: its provider, if it keeps anything about a person."""

    name: str
    actions: tuple[AnyAction, ...] = ()
    settings: tuple[Setting[Any], ...] = ()
    # Settings each community may change (community.settings: stored per community, with the default's reason;
    # `linli community show-settings|set-setting`), as opposed to ``settings``, one value for the whole site.
    community_settings: tuple[per_community.Setting[Any], ...] = ()
    personal_data: PersonalDataProvider | None = field(default=None)
