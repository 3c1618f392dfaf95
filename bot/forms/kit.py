"""Pieces that several declared forms declare alike: the page of who a form reaches (the whole community, or
lists of buildings, residents' groups, roles), a list of names as toggles, and a typed date and time in the
community's time zone."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from babel.dates import get_timezone_location

from bot import forms
from bot.context import Context
from bot.forms.engine import Choice, F, FormPick, FormPress, Listing, Page
from bot.notices.form import TIME_FORMAT, parse_send_time
from bot.notices.render import describe_audience
from bot.replies import Button, Keyboard
from community.communities import get_community
from community.notices import Audience
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


def clear_listings(listings: Sequence[Listing[F]]) -> Callable[[Context, F], None]:
    """The whole community: every list's choices cleared."""

    def clear(_: Context, form: F) -> None:
        for listing in listings:
            listing.clear(form)

    return clear


def audience_page(
    *,
    template: str,
    audience: Callable[[F], Audience],
    count: Callable[[Context, F], Awaitable[int]],
    listings: Sequence[Listing[F]],
    press: type[FormPress],
    pick: type[FormPick],
    everyone: StrEnum,
    done: StrEnum,
    back: StrEnum,
    cancel: StrEnum,
) -> Page[F]:
    """Who the form reaches: ``template`` gets the audience described, how many it reaches now (``count``) and the
    list open ("b", "g", "r": its key) or None; under it the whole community, a button per list that has choices,
    Next and Cancel, or the open list's toggles and Back."""

    def button(label: str, action: StrEnum) -> Button:
        return Button(label, press(action).pack())

    async def render(ctx: Context, form: F, listing: StrEnum | None) -> tuple[str, Keyboard]:
        text = ctx.l.render(
            template,
            audience=describe_audience(ctx.l, audience(form)),
            count=await count(ctx, form),
            listing=listing.value if listing is not None else None,
        )
        rows: list[tuple[Button, ...]] = []
        shown = next((each for each in listings if each.key == listing), None)
        if shown is None:
            whole = forms.mark(audience(form).is_everyone(), ctx.l.label("Whole community"))
            rows.append((button(whole, everyone),))
            lists = [
                button(forms.list_label(ctx, each.label, each.chosen(form)), each.open)
                for each in listings
                if each.choices(ctx, form)
            ]
            rows.extend(forms.rows(lists))
            rows.append((button(ctx.l.label("Next ›"), done), button(ctx.l.label("Cancel"), cancel)))
            return text, tuple(rows)
        toggles = [
            Button(forms.mark(choice.chosen, choice.label), pick(shown.key, choice.index).pack())
            for choice in shown.choices(ctx, form)
        ]
        rows.extend(forms.rows(toggles))
        rows.append((button(ctx.l.label("‹ Back"), back),))
        return text, tuple(rows)

    return Page(render=render, listings=tuple(listings))


BUILDINGS = N_("Buildings")
GROUPS = N_("Residents' groups")


async def time_prompt(ctx: Context, community_id: int, template: str, *, days_later: int = 0, **params: str) -> str:
    """The question for a date and time: ``template`` gets the community's time zone as a place and an example,
    tomorrow at 9:00 (``days_later`` days after that)."""
    zone = ZoneInfo((await get_community(ctx.uow, community_id)).timezone)
    tomorrow = (ctx.uow.clock.now().astimezone(zone) + timedelta(days=1)).replace(hour=9, minute=0)
    example = tomorrow + timedelta(days=days_later)
    return ctx.l.render(
        template,
        zone=get_timezone_location(zone, locale=ctx.l.t.locale),
        example=example.strftime(TIME_FORMAT),
        **params,
    )


async def typed_time(ctx: Context, community_id: int, text: str) -> datetime:
    """A typed date and time in the community's time zone (refused with the format to use)."""
    return parse_send_time(text, (await get_community(ctx.uow, community_id)).timezone)
