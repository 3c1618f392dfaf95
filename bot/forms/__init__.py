"""What the chat forms (/notice, /newconsultation) and the screens edited in place (/consult, /consultations,
moderation) share: a screen shown in place of the message whose button was pressed, the answer to a button of a
form that is gone, rows of buttons, ✓ marks on chosen options, a list's button with how many are chosen, and
toggling a value in a list; and the form itself as the dialogue state keeps it (plain JSON), with the photo or
document a composer sent. One place, so that every form looks and answers alike. The engine that drives a
declared form is bot.forms.engine; the pieces several forms declare alike (who it reaches, a typed time) are
bot.forms.kit."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import Field, asdict
from typing import Any, ClassVar, Self, cast

from bot.context import Context
from bot.events import ButtonPress, FileShared
from bot.replies import AnswerButton, Button, EditText, Keyboard, Reply, SendMedia, SendText
from community.notice_models import AttachmentKind
from community.notices import Attachment
from community.notify import MessageRef
from i18n import N_

STALE = N_("This button is out of date. Send /menu to start again.")
CHECK = "✓ "
PER_ROW = 2


def pressed_message_id(ctx: Context) -> str | None:
    """The message whose button was pressed; None after typed input."""
    payload = ctx.event.payload
    return payload.message_id if isinstance(payload, ButtonPress) else None


def tapped(ctx: Context) -> MessageRef | None:
    """The message whose button was pressed, for a use case that changes the other copies of it (community.notify)
    and leaves this one to the reply; None after typed input."""
    message_id = pressed_message_id(ctx)
    if message_id is None:
        return None
    sender = ctx.event.sender
    return MessageRef(sender.channel, sender.chat_id, message_id)


def show(ctx: Context, text: str, buttons: Keyboard = ()) -> Reply:
    """In place of the message whose button was pressed, or as a new message after typed input."""
    message_id = pressed_message_id(ctx)
    return EditText(message_id, text, buttons) if message_id is not None else SendText(text, buttons)


def stale(ctx: Context) -> Sequence[Reply]:
    """The answer to a button whose form is gone or has moved on: nothing changes."""
    return (AnswerButton(ctx.l.label(STALE), alert=True),)


def rows(buttons: Sequence[Button], per_row: int = PER_ROW) -> list[tuple[Button, ...]]:
    return [tuple(buttons[i : i + per_row]) for i in range(0, len(buttons), per_row)]


def mark(chosen: bool, label: str) -> str:
    return CHECK + label if chosen else label


def list_label(ctx: Context, label: str, chosen: int) -> str:
    """The button that opens a list of toggles (label: a message id), with how many are chosen."""
    name = ctx.l.label(label)
    if not chosen:
        return name + " ›"
    return ctx.l.label("%(list)s (%(chosen)s chosen) ›", list=name, chosen=chosen)


def toggled(values: list[str], value: str) -> list[str]:
    """``values`` with ``value`` taken out if it was in, added at the end if it was not."""
    return [v for v in values if v != value] if value in values else [*values, value]


# --- the form in the dialogue state ----------------------------------------------------------------------------


class StateForm:
    """A form dataclass kept in the dialogue state: ``of`` reads it back (fields the state lacks keep their
    defaults, so a form started before a field was added still loads), ``save`` writes it with the next state."""

    __slots__ = ()
    __dataclass_fields__: ClassVar[dict[str, Field[Any]]]

    @classmethod
    def of(cls, ctx: Context) -> Self:
        assert ctx.state is not None
        data = dict(ctx.state.data)
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        return cast(Callable[..., Self], cls)(**known)

    async def save(self, ctx: Context, state: str) -> None:
        await ctx.set_state(state, **asdict(self))


def shared_attachment(ctx: Context, payload: FileShared) -> dict[str, str]:
    """The photo or document a composer sent, as the form keeps it: a file reference is good only on the
    channel that took it, so the channel is kept with it."""
    return {
        "kind": AttachmentKind.PHOTO.value if payload.kind == "photo" else AttachmentKind.DOCUMENT.value,
        "channel": ctx.event.sender.channel,
        "ref": payload.file_ref,
        "name": payload.file_name or "",
    }


def attachment_of(kept: Mapping[str, str] | None) -> Attachment | None:
    """The attachment a form keeps (shared_attachment), for the draft and the preview."""
    if not kept:
        return None
    return Attachment(
        kind=AttachmentKind(kept["kind"]), channel=kept["channel"], ref=kept["ref"], name=kept["name"] or None
    )


def file_shown_here(ctx: Context, attachment: Attachment | None) -> bool:
    """Whether this chat can show the attachment: a file reference is good only on the channel that took it."""
    return attachment is not None and attachment.channel == ctx.event.sender.channel


def as_received(text: str, buttons: Keyboard, attachment: Attachment | None, *, with_file: bool) -> Reply:
    """A message of the preview as residents receive it: the caption of its photo or document where the file is
    shown (with_file), otherwise text."""
    if with_file and attachment is not None:
        return SendMedia(attachment.kind.value, attachment.ref, text, file_name=attachment.name, buttons=buttons)
    return SendText(text, buttons=buttons)
