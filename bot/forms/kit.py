"""Pieces that several declared forms (bot.forms.engine) declare alike: the buildings and residents' groups a form
may address and their lists of toggles, the page of who a form reaches (the whole community, or those lists), a
question for a date and time in the community's time zone, and the summary of a form so far."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from functools import partial
from typing import Protocol, TypedDict, TypeVar
from zoneinfo import ZoneInfo

from babel.dates import get_timezone_location

from bot import forms
from bot.context import Context
from bot.forms.engine import Choice, Controls, Do, F, FormData, Listing, Move, Page, Show, Step, Target
from bot.notices.form import TIME_FORMAT, parse_send_time
from bot.notices.render import describe_audience, moment
from bot.replies import Button, Keyboard
from community import notices
from community.communities import get_community
from community.scope import Scope
from i18n import N_


def names_listing(
    key: StrEnum,
    open: StrEnum,
    label: str,
    options: Callable[[F], Sequence[str]],
    chosen: Callable[[F], list[str]],
) -> Listing[F]:
    """A list of names shown as they are called (buildings, residents' groups): the buttons' indexes point into
    ``options`` (the names as shown when the form started), the chosen names are kept in ``chosen``."""

    def choices(_: Context, form: F) -> Sequence[Choice]:
        picked = chosen(form)
        return [Choice(index, name, name in picked) for index, name in enumerate(options(form))]

    def toggle(form: F, index: int) -> bool:
        names = options(form)
        if not 0 <= index < len(names):
            return False
        values = chosen(form)
        values[:] = forms.toggled(values, names[index])
        return True

    return Listing(
        key=key,
        open=open,
        label=label,
        choices=choices,
        toggle=toggle,
        chosen=lambda form: len(chosen(form)),
        clear=lambda form: chosen(form).clear(),
    )


class Places(FormData, Protocol):
    """A form that addresses buildings and residents' groups: the names shown when it started (the buttons'
    indexes point into them) and those chosen; and the audience they make."""

    building_options: list[str]
    buildings: list[str]
    group_options: list[str]
    groups: list[str]

    def audience(self) -> Scope: ...


P = TypeVar("P", bound=Places)


class PlaceOptions(TypedDict):
    building_options: list[str]
    group_options: list[str]


async def place_options(ctx: Context, community_id: int) -> PlaceOptions:
    """A new form's buildings and residents' groups to choose from: the community's, as they are shown."""
    options = await notices.audience_options(ctx.uow, community_id)
    return PlaceOptions(building_options=list(options.buildings), group_options=list(options.groups))


def place_listings(
    buildings: tuple[StrEnum, StrEnum], groups: tuple[StrEnum, StrEnum]
) -> tuple[Listing[P], Listing[P]]:
    """The lists of buildings and of residents' groups: each its toggles' key and the action that opens it."""
    return (
        names_listing(*buildings, BUILDINGS, lambda form: form.building_options, lambda form: form.buildings),
        names_listing(*groups, GROUPS, lambda form: form.group_options, lambda form: form.groups),
    )


def audience_page(
    name: str,
    controls: Controls,
    template: str,
    count: Callable[[Context, P], Awaitable[int]],
    listings: Sequence[Listing[P]],
    *,
    everyone: StrEnum,
    done: StrEnum,
) -> Page[P]:
    """The page ``name`` of who the form reaches: ``template`` gets the audience described, how many it reaches
    now (``count``) and the list open (its key: "b", "g", "r") or None; under it the whole community (the action
    ``everyone`` clears every list), a button per list that has choices, Next (``done``: on to the hub) and
    Cancel, or the open list's toggles and Back."""

    async def render(ctx: Context, form: P, listing: StrEnum | None) -> tuple[str, Keyboard]:
        text = ctx.l.render(
            template,
            audience=describe_audience(ctx.l, form.audience()),
            count=await count(ctx, form),
            listing=listing.value if listing is not None else None,
        )
        rows: list[tuple[Button, ...]] = []
        shown = next((each for each in listings if each.key == listing), None)
        if shown is None:
            whole = forms.mark(form.audience().is_everyone(), ctx.l.label("Whole community"))
            rows.append((controls.button(whole, everyone),))
            lists = [
                controls.button(forms.list_label(ctx, each.label, each.chosen(form)), each.open)
                for each in listings
                if each.choices(ctx, form)
            ]
            rows.extend(forms.rows(lists))
            rows.append(controls.row(ctx, (N_("Next ›"), done), (N_("Cancel"), controls.cancel)))
            return text, tuple(rows)
        toggles = [
            Button(forms.mark(choice.chosen, choice.label), controls.pick(shown.key, choice.index).pack())
            for choice in shown.choices(ctx, form)
        ]
        rows.extend(forms.rows(toggles))
        rows.append(controls.row(ctx, (N_("‹ Back"), controls.back)))
        return text, tuple(rows)

    def clear(_: Context, form: P) -> None:
        for listing in listings:
            listing.clear(form)

    actions: dict[StrEnum, Do[P] | Target] = {everyone: Do(Show(name), clear), done: Move.HUB}
    return Page(render=render, listings=tuple(listings), actions=actions)


BUILDINGS = N_("Buildings")
GROUPS = N_("Residents' groups")


def time_step(
    name: str,
    template: str,
    keep: Callable[[Context, F, datetime], None],
    buttons: Sequence[tuple[str, StrEnum]],
    *,
    days_later: int = 0,
    **params: str,
) -> Step[F]:
    """A question for a date and time: ``template`` gets the community's time zone as a place and an example,
    tomorrow at 9:00 (``days_later`` days after that); the typed time, in that zone, goes to ``keep``, which
    calls the validators."""

    async def prompt(ctx: Context, form: F) -> str:
        zone = ZoneInfo((await get_community(ctx.uow, form.community_id)).timezone)
        tomorrow = (ctx.uow.clock.now().astimezone(zone) + timedelta(days=1)).replace(hour=9, minute=0)
        example = tomorrow + timedelta(days=days_later)
        return ctx.l.render(
            template,
            zone=get_timezone_location(zone, locale=ctx.l.t.locale),
            example=example.strftime(TIME_FORMAT),
            **params,
        )

    async def take(ctx: Context, form: F, text: str) -> None:
        keep(ctx, form, parse_send_time(text, (await get_community(ctx.uow, form.community_id)).timezone))

    return Step(name, prompt, take, TYPE_A_TIME, buttons)


TYPE_A_TIME = N_("Please type the date and time.")


async def summary(ctx: Context, form: F, template: str, *, audience: Scope, count: int, **params: object) -> str:
    """A form's summary (on the hub and under the preview) in the composer's language at the community's time
    zone: ``template`` gets the community's name, the audience described, how many it reaches, ``at`` to write a
    moment, and ``params``."""
    community = await get_community(ctx.uow, form.community_id)
    reader = ctx.l.with_timezone(community.timezone)
    return reader.render(
        template,
        at=partial(moment, reader),
        community=community.name,
        audience=describe_audience(reader, audience),
        count=count,
        **params,
    )
