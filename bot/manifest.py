"""A feature's manifest, the bot ring's half: how the chat front and the jobs' process reach the feature. Its
domain half (community.features.Feature: actions with default roles, settings with defaults, the personal-data
provider) comes with it, so the composition root (bot/app.py) learns everything about a feature from one value.

    MANIFEST = Manifest(
        feature=MY_FEATURE,                               # from the feature's domain package
        handlers=(my_handlers.register,),                 # each register(router): commands, buttons, states
        menu=(MenuEntry("mine", N_("Mine"), MY_ACTION, position=450),),
        jobs=(my_jobs.register_jobs,),                    # each register_jobs(registry, app)
        privacy=template_section("privacy_mine.j2"),      # how /privacy shows what the provider found
    )

bot/features.py lists the manifests Linli runs with; build_app(manifests=...) takes another list (a test adds a
feature of its own). Nothing else in the bot knows a feature by name: the menu, /privacy, /forget, the scheduler's job
registry and the permission checks all read the composed Features."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from bot.rendering import Localizer, Localizers
from community.features import AnyAction, Feature, PersonalDataProvider, SettingValues
from community.notify import Renderers
from community.privacy import KERNEL_SECTIONS, Eraser
from community.unit_of_work import UnitOfWork

if TYPE_CHECKING:
    from bot.app import App
    from bot.router import Router
    from bot.scheduling import JobRegistry

HandlerRegistrar = Callable[["Router"], None]
JobRegistrar = Callable[["JobRegistry", "App"], None]
RendererRegistrar = Callable[[Renderers, Localizers], None]
# How /privacy shows a provider's section to one reader; the section is what the provider's collect() returned.
SectionRenderer = Callable[[Localizer, Any], str]
# Writes one subject (a consultation, say) in one format for one reader: (uow, actor_id or None for the
# operator, subject id, format, reader, stream). It imports its heavy libraries itself, when called.
ExportWriter = Callable[[UnitOfWork, "int | None", int, str, Localizer, IO[bytes]], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class MenuEntry:
    """A button of /menu that runs a command (also reachable by typing /command)."""

    command: str
    label: str  # English message id of the button label
    action: AnyAction | None = None  # who sees it; None: everyone, members of no community too
    # Where it stands among every feature's entries, lowest first: staff tools, then residents', then the base.
    position: int = 500


@dataclass(frozen=True, slots=True)
class Export:
    """A file a feature can produce (the committee's outcome of a consultation, say)."""

    name: str  # "consultation": what `linli export <name>` and the feature's buttons ask for
    formats: tuple[str, ...]
    write: ExportWriter


@dataclass(frozen=True, slots=True)
class Manifest:
    feature: Feature
    handlers: tuple[HandlerRegistrar, ...] = ()
    menu: tuple[MenuEntry, ...] = ()
    jobs: tuple[JobRegistrar, ...] = ()
    exports: tuple[Export, ...] = ()
    # How /privacy shows what feature.personal_data found; required exactly when the feature has a provider.
    privacy: SectionRenderer | None = None
    # How its notifications (community.notify) read: each registers its renderers with the kernel's registry.
    renderers: tuple[RendererRegistrar, ...] = ()

    @property
    def name(self) -> str:
        return self.feature.name


def template_section(template: str) -> SectionRenderer:
    """A /privacy section rendered from a template, which gets the provider's section as ``data``."""

    def render(l: Localizer, section: Any) -> str:  # noqa: E741 - the house name for a localizer
        return l.render(template, data=section)

    return render


@dataclass(frozen=True, slots=True)
class PrivacySection:
    provider: PersonalDataProvider
    render: SectionRenderer


@dataclass(frozen=True, eq=False)
class Features:
    """Every manifest of one app, composed and checked once (names, actions, settings, menu commands and export
    names each declared once). Built by bot.app.build_router; handlers read it as ctx.features."""

    manifests: tuple[Manifest, ...] = ()
    menu: tuple[MenuEntry, ...] = ()
    privacy: tuple[PrivacySection, ...] = ()
    settings: SettingValues = field(default_factory=SettingValues)
    actions: Mapping[str, AnyAction] = field(default_factory=dict)
    exports: Mapping[str, Export] = field(default_factory=dict)

    @classmethod
    def of(cls, manifests: Iterable[Manifest], setting_overrides: Mapping[str, object] | None = None) -> Features:
        manifests = tuple(manifests)
        names: set[str] = set()
        actions: dict[str, AnyAction] = {}
        commands: set[str] = set()
        community_keys: set[str] = set()
        exports: dict[str, Export] = {}
        privacy: list[PrivacySection] = []
        for manifest in manifests:
            feature = manifest.feature
            _once(names, feature.name, "feature")
            for action in feature.actions:
                if action.value in actions:
                    raise ValueError(f"the action {action.value!r} is declared twice")
                actions[action.value] = action
            for entry in manifest.menu:
                _once(commands, entry.command, "menu entry")
            for community_setting in feature.community_settings:
                _once(community_keys, community_setting.key, "community setting")
            for export in manifest.exports:
                if export.name in exports:
                    raise ValueError(f"the export {export.name!r} is declared twice")
                exports[export.name] = export
            provider = feature.personal_data
            if (provider is None) != (manifest.privacy is None):
                raise ValueError(f"{feature.name}: a personal-data provider and its /privacy section go together")
            if provider is not None and manifest.privacy is not None:
                if provider.key in KERNEL_SECTIONS or any(p.provider.key == provider.key for p in privacy):
                    raise ValueError(f"{feature.name}: the personal-data section {provider.key!r} is taken")
                privacy.append(PrivacySection(provider, manifest.privacy))
        # sorted() is stable: entries at one position keep their manifests' order.
        menu = tuple(sorted((e for m in manifests for e in m.menu), key=lambda entry: entry.position))
        settings = SettingValues((s for m in manifests for s in m.feature.settings), setting_overrides)
        return cls(manifests, menu, tuple(privacy), settings, actions, exports)

    @property
    def providers(self) -> tuple[PersonalDataProvider, ...]:
        return tuple(section.provider for section in self.privacy)

    @property
    def erasers(self) -> tuple[Eraser, ...]:
        """What community.privacy.forget runs first: every feature's provider's erase."""
        return tuple(section.provider.erase for section in self.privacy)


def _once(seen: set[str], name: str, what: str) -> None:
    if name in seen:
        raise ValueError(f"the {what} {name!r} is declared twice")
    seen.add(name)
