"""Transcripts of how a resident becomes a member, as the resident and the community worker see them in the
console channel (buttons pressed by number, /as to switch person), on both databases:
joining by deep link, wrong and expired codes, the lockout, and join requests approved or rejected."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from bot.channels.console import ConsoleSession, ConsoleUser
from bot.conversation import Conversation
from bot.events import ButtonPress, Command, ContactShared, Event, Sender
from bot.handlers.invitations import InviteUses
from bot.handlers.start import StartWay, Way
from bot.rendering import Localizers
from bot.replies import SendText
from community.clock import FakeClock
from community.communities import add_community, add_member
from community.models import Invitation, JoinRequest, JoinRequestStatus, Person
from community.people import identify, memberships_of
from community.roles import CommunityKind, Role
from community.unit_of_work import UnitOfWorkFactory
from community.verification import create_invitation
from tests.support.console import DeliveringSession
from tests.support.console import has as _has
from tests.support.console import script as _script

COMMUNITY = "康乐社区"
WORKER = ConsoleUser(key="worker", name="李娜", language_code="zh-hans")  # reads Chinese
EN_WORKER = ConsoleUser(key="en-worker", name="Li Na", language_code="en")
RESIDENT = ConsoleUser(key="resident", name="Wang Fang", language_code="en")  # reads English
NEIGHBOUR = ConsoleUser(key="neighbour", name="Chen", language_code="en")
PEOPLE = (WORKER, EN_WORKER, RESIDENT, NEIGHBOUR)
HOME = "12号楼 3单元 501"
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture
async def community_id(uows: UnitOfWorkFactory) -> int:
    """康乐社区 with two community workers: 李娜 reads Chinese, Li Na English."""
    async with uows() as uow:
        community = await add_community(uow, name=COMMUNITY, kind=CommunityKind.NEIGHBOURHOOD)
        assert community.id is not None
        for user in (WORKER, EN_WORKER):
            me = await identify(
                uow,
                channel="console",
                external_id=user.key,
                chat_id=user.key,
                display_name=user.name,
                language_code=user.language_code,
            )
            await add_member(
                uow, person_id=me.person_id, community_id=community.id, roles={Role.COMMUNITY_WORKER}, reason="test"
            )
        await uow.commit()
    return community.id


@pytest.fixture
def session(
    community_id: int, uows: UnitOfWorkFactory, conversation: Conversation, localizers: Localizers, tmp_path: Path
) -> ConsoleSession:
    """The console as `linli run` runs it: each line's messages to other people are delivered before the next."""
    return DeliveringSession(uows, conversation, PEOPLE, localizers.get("en"), files_dir=tmp_path / "files")


async def _code(uows: UnitOfWorkFactory, community_id: int, *, valid_for: timedelta = timedelta(days=14)) -> str:
    async with uows() as uow:
        issued = await create_invitation(uow, actor_id=None, community_id=community_id, valid_for=valid_for)
        await uow.commit()
    return issued.code


def _speaks_chinese(out: Sequence[str], *english: str, names: Sequence[str] = ()) -> bool:
    """Translations come later: a Chinese reader's message is not the English text and holds Chinese
    (other than the names in it)."""
    text = "\n".join(out)
    for name in (*names, COMMUNITY, HOME):
        text = text.replace(name, "")
    return all(phrase not in text for phrase in english) and CJK.search(text) is not None


async def _member_of(uows: UnitOfWorkFactory, key: str) -> list[tuple[str, str | None, frozenset[Role]]]:
    async with uows() as uow:
        me = await identify(uow, channel="console", external_id=key, chat_id=key, display_name=key)
        return [
            (view.community.name, view.household.label if view.household else None, view.roles)
            for view in await memberships_of(uow, me.person_id)
        ]


# --- invitations ----------------------------------------------------------------------------------------------


async def test_a_worker_invites_and_a_resident_joins_by_the_deep_link(
    session: ConsoleSession, uows: UnitOfWorkFactory
) -> None:
    out = await _script(session, "/as en-worker", "/invite")
    assert out[0] == f"New invitation to {COMMUNITY}"
    assert out[-7:] == [
        "  [1] resident",
        "  [2] household representative",
        "  [3] volunteer",
        "  [4] party member",
        "  [5] resident unit contact",
        "  [6] community worker",
        "  [7] committee member",
    ]
    out = await session.feed("3")  # volunteer
    assert _has(out, "Invitation for: volunteer") and out[-3:] == ["  [1] 1", "  [2] 10", "  [3] 50"]

    out = await session.feed("2")  # 10 people
    assert _has(out, f"Invitation to {COMMUNITY}")
    assert _has(out, "For: volunteer") and _has(out, "Can be used by 10 people.")
    assert _has(out, "Valid until Mar 15, 2026")  # 14 days, in Shanghai time
    match = re.search(r"Code: ([A-Z0-9]{10})", "\n".join(out))
    assert match is not None
    code = match[1]
    assert _has(out, f"Link: https://t.me/linli_test_bot?start={code}")
    assert _has(out, "shown only this once")

    # Telegram turns the link into "/start CODE" from the resident's own chat.
    out = await _script(session, "/as resident", f"/start {code}")
    assert out[:2] == [f"Welcome to {COMMUNITY}!", "You joined as volunteer."]
    assert _has(out, "Your roles: resident and volunteer")  # the main menu follows
    assert _has(out, "What would you like to do, Wang Fang?")
    assert await _member_of(uows, "resident") == [(COMMUNITY, None, frozenset({Role.RESIDENT, Role.VOLUNTEER}))]

    # The code is never stored: only its hash.
    async with uows() as uow:
        from community.models import Invitation

        invitation = (await uow.session.exec(select(Invitation))).one()
    assert invitation.code_hash != code and invitation.uses == 1


async def test_a_household_representative_invitation_names_the_household(
    session: ConsoleSession, uows: UnitOfWorkFactory
) -> None:
    out = await _script(session, "/as en-worker", "/invite", "2")
    assert _has(out, "Which household in 康乐社区 will they represent?")
    assert await session.feed("x" * 101) == ["A household label needs 1 to 100 characters."]
    out = await session.feed(HOME)
    assert _has(out, f"Household: {HOME}") and _has(out, "Can be used once.")
    code = re.findall(r"Code: ([A-Z0-9]{10})", "\n".join(out))[0]

    out = await _script(session, "/as resident", f"/start {code.lower()}")
    assert out[:3] == [f"Welcome to {COMMUNITY}!", "You joined as household representative.", f"Household: {HOME}"]
    assert await _member_of(uows, "resident") == [
        (COMMUNITY, HOME, frozenset({Role.RESIDENT, Role.HOUSEHOLD_REPRESENTATIVE}))
    ]


async def test_a_staff_invitation_is_for_one_person_for_72_hours_and_a_forged_one_is_refused(
    session: ConsoleSession, uows: UnitOfWorkFactory, community_id: int
) -> None:
    out = await _script(session, "/as en-worker", "/invite", "6")  # community worker: no question how many
    assert _has(out, "Invitation for: community worker") and _has(out, "Can be used once.")
    assert _has(out, "Valid until Mar 4, 2026, 5:00:00\u202fPM")  # 72 hours, in Shanghai time
    assert not _has(out, "How many people may use it?")

    for role, uses, refusal in (
        (Role.COMMITTEE_MEMBER, 1000, "An invitation for this role is for one person: it can be used only once."),
        (Role.COMMUNITY_WORKER, 2, "An invitation for this role is for one person: it can be used only once."),
        (Role.RESIDENT, 1000, "An invitation can be used 1 to 200 times."),
    ):
        assert await _press_as(session, EN_WORKER, InviteUses(community_id, role, uses).pack()) == [refusal]

    async with uows() as uow:
        stored = (await uow.session.exec(select(Invitation.role, Invitation.max_uses))).all()
    assert stored == [(Role.COMMUNITY_WORKER, 1)]


async def _press_as(session: ConsoleSession, user: ConsoleUser, data: str) -> list[str]:
    """A button press with this data (forged: no message showed it), and the texts of the answer."""
    sender = Sender("console", user.key, user.key, user.name, user.language_code)
    replies = await session.conversation.handle(Event(sender, ButtonPress(data)))
    return [line for reply in replies if isinstance(reply, SendText) for line in reply.text.splitlines()]


async def test_the_worker_reads_the_invitation_in_chinese(session: ConsoleSession) -> None:
    out = await _script(session, "/as worker", "/invite", "1", "1")
    assert _speaks_chinese(out, "Invitation to", "Can be used once.", "shown only this once")
    assert _has(out, "https://t.me/linli_test_bot?start=")


async def test_a_resident_cannot_invite(session: ConsoleSession, uows: UnitOfWorkFactory, community_id: int) -> None:
    code = await _code(uows, community_id)
    await _script(session, "/as resident", f"/start {code}")

    out = await session.feed("/invite")

    assert out == ["Your role in this community does not allow that."]


async def test_a_newcomer_chooses_to_type_the_code(
    session: ConsoleSession, uows: UnitOfWorkFactory, community_id: int
) -> None:
    code = await _code(uows, community_id)
    out = await _script(session, "/as resident", "/start")
    assert out[0] == "Welcome to Linli (邻里), Wang Fang!"
    assert out[-2:] == ["  [1] I have an invitation code", "  [2] Ask to join"]

    assert await session.feed("1") == ["Send me your invitation code. Send /cancel to stop."]
    out = await session.feed("not my code")
    assert out == [
        "This invitation code is not valid. Check it and try again.",
        "Send the code again, or send /cancel to stop.",
    ]
    out = await session.feed(f"{code[:5]} {code[5:]}")
    assert out[:2] == [f"Welcome to {COMMUNITY}!", "You joined as resident."]


async def test_wrong_expired_and_used_codes_are_refused_with_the_reason(
    session: ConsoleSession, uows: UnitOfWorkFactory, community_id: int, clock: FakeClock
) -> None:
    out = await _script(session, "/as resident", "/start ABCDEFGHJK")
    assert out == [
        "This invitation code is not valid. Check it and try again.",
        "To try again, send /start followed by the code, or send /start to ask to join instead.",
    ]

    short_lived = await _code(uows, community_id, valid_for=timedelta(hours=1))
    used = await _code(uows, community_id)
    await _script(session, "/as neighbour", f"/start {used}")
    clock.advance(timedelta(hours=1))

    out = await _script(session, "/as resident", f"/start {short_lived}")
    assert out[0] == "This invitation has expired. Ask your community worker for a new one."
    out = await session.feed(f"/start {used}")
    assert out[0] == "This invitation has already been used. Ask your community worker for a new one."
    assert await _member_of(uows, "resident") == []


async def test_a_member_using_a_code_again_gets_the_menu(
    session: ConsoleSession, uows: UnitOfWorkFactory, community_id: int
) -> None:
    code = await _code(uows, community_id)
    await _script(session, "/as resident", f"/start {code}")

    out = await session.feed(f"/start {code}")

    assert out[0] == f"You are already a member of {COMMUNITY}."
    assert _has(out, "What would you like to do, Wang Fang?")


async def test_five_wrong_codes_lock_for_fifteen_minutes(
    session: ConsoleSession, uows: UnitOfWorkFactory, community_id: int, clock: FakeClock
) -> None:
    code = await _code(uows, community_id)
    await session.feed("/as resident")
    for attempt in range(4):
        out = await session.feed(f"/start WRONG{attempt}")
        assert out[-1].startswith("To try again")

    out = await session.feed("/start WRONG5")
    assert out == [
        "This invitation code is not valid. Check it and try again.",
        "Too many wrong codes. Try again after Mar 1, 2026, 5:15:00\u202fPM.",  # 09:00 UTC is 17:00 in Shanghai
    ]
    out = await session.feed(f"/start {code}")
    assert out == ["Too many wrong codes. Try again after Mar 1, 2026, 5:15:00\u202fPM."]

    clock.advance(timedelta(minutes=15))
    out = await session.feed(f"/start {code}")
    assert out[0] == f"Welcome to {COMMUNITY}!"


async def test_a_photo_where_text_is_expected_gets_the_prompts_own_question(
    session: ConsoleSession, uows: UnitOfWorkFactory, community_id: int
) -> None:
    notice_hint = "I take photos and documents only as part of a notice. Community workers start one with /notice."
    await _script(session, "/as resident", "/start", "1")  # the code prompt
    for _ in range(6):  # more than the wrong codes that lock: a photo is not one
        out = await session.feed("/photo invitation.jpg ABCDE FGHJK")
        assert out == ["Please type the invitation code your community worker gave you."]
    out = await session.feed(await _code(uows, community_id))
    assert out[0] == f"Welcome to {COMMUNITY}!"

    await _script(session, "/as neighbour", "/start", "2")  # the join form asks the name
    assert await session.feed("/photo me.jpg") == ["Please type your name."]
    await session.feed("Chen")
    assert await session.feed("/document lease.pdf") == ["Please type your building, unit and room."]

    await _script(session, "/as en-worker", "/invite", "2")  # the household of a representative
    assert await session.feed("/photo door.jpg") == ["Please type the building, unit and room."]

    await session.feed("/cancel")
    assert await session.feed("/photo poster.jpg") == [notice_hint]  # no prompt: the notice composer's hint


async def test_a_lock_ends_the_code_question(session: ConsoleSession) -> None:
    await _script(session, "/as resident", "/start", "1", *(f"wrong {n}" for n in range(4)))
    out = await session.feed("wrong 5")
    assert out[-1].startswith("Too many wrong codes.")
    out = await session.feed("one more")  # no longer taken as a code
    assert out == ["I wasn't expecting a message just now. Send /menu to see what you can do."]


async def test_chat_after_joining_is_not_taken_for_wrong_codes(
    session: ConsoleSession, uows: UnitOfWorkFactory, community_id: int
) -> None:
    """Only a /start payload or a code typed at the code prompt is an attempt. Here the prompt was left open
    (a wrong code, then the request was approved); the new resident's chat, however code-like, is not."""
    await _ask_to_join(session, share_phone=False)
    await _script(session, "/start", "1")  # I have an invitation code
    out = await session.feed("ABCDE FGHJK")
    assert out[-1] == "Send the code again, or send /cancel to stop."
    await _script(session, "/as en-worker", "/requests", "1")  # ✅ Approve
    await session.feed("/as resident")

    for _ in range(10):
        out = await session.feed("ha ha ha ha ha")  # normalised, ten letters of the code alphabet
        assert out == ["I wasn't expecting a message just now. Send /menu to see what you can do."]
    out = await session.feed("/start")
    assert out[0] == COMMUNITY and _has(out, "What would you like to do, Wang Fang?")
    assert _has(await _tap_code_button_again(session), "What would you like to do, Wang Fang?")
    out = await session.feed("HAHAHAHAHA")
    assert out == ["I wasn't expecting a message just now. Send /menu to see what you can do."]

    # Not locked: a real invitation to a second community still works at once.
    async with uows() as uow:
        other = await add_community(uow, name="阳光社区", kind=CommunityKind.NEIGHBOURHOOD)
        assert other.id is not None
        await uow.commit()
    out = await session.feed(f"/start {await _code(uows, other.id)}")
    assert not _has(out, "Too many wrong codes")
    assert [name for name, _, _ in await _member_of(uows, "resident")] == [COMMUNITY, "阳光社区"]


async def _tap_code_button_again(session: ConsoleSession) -> list[str]:
    """A member pressing the newcomer's "I have an invitation code" on an old message: the texts they get."""
    press = Event(
        Sender("console", RESIDENT.key, RESIDENT.key, RESIDENT.name, "en"), ButtonPress(StartWay(Way.CODE).pack())
    )
    replies = await session.conversation.handle(press)
    return [line for reply in replies if isinstance(reply, SendText) for line in reply.text.splitlines()]


# --- join requests --------------------------------------------------------------------------------------------


async def _ask_to_join(session: ConsoleSession, name: str = "王芳", *, share_phone: bool = True) -> list[str]:
    await _script(session, "/as resident", "/start", "2", name, HOME)
    if share_phone:
        await session.feed("/contact +86 138-0000-0000")
    else:
        await session.feed("1")  # Skip
    return await session.feed("1")  # Send the request


async def test_a_request_approved_by_a_chinese_worker_is_told_to_an_english_resident(
    session: ConsoleSession, uows: UnitOfWorkFactory
) -> None:
    out = await _script(session, "/as resident", "/start", "2")
    assert out == [
        f"Ask to join {COMMUNITY}",  # the only community: no question which
        "A community worker will check your request. Send /cancel to stop at any time.",
        "",
        "What is your name? Write it the way your neighbours and the community worker know you.",
    ]
    out = await session.feed("王芳")
    assert out == ["Where do you live? Write your building, unit and room.", "For example: 12号楼 3单元 501"]
    out = await session.feed(HOME)
    assert _has(out, "  [/contact] Share my phone number") and out[-1] == "  [1] Skip"
    out = await session.feed("/contact +86 138-0000-0000")
    assert out == [
        "Thank you.",
        f"Your request to join {COMMUNITY}",
        "Name: 王芳",
        f"Household: {HOME}",
        "Phone: +8613800000000",
        "",
        "Send it to the community workers?",
        "  [1] Send the request",
        "  [2] Cancel",
    ]
    out = await session.feed("1")
    assert out == [
        "(the message above was changed)",
        f"Your request to join {COMMUNITY} has been sent.",
        "A community worker will check it; you will get a message here when it is decided.",
        "→ a message was sent to 李娜",
        "→ a message was sent to Li Na",
    ]

    # 李娜 reads Chinese: the request reaches her in Chinese, with the buttons to decide.
    out = await session.feed("/as worker")
    assert _has(out, "王芳") and _has(out, HOME) and _has(out, "+8613800000000")
    assert _speaks_chinese(out, "Request to join", "Does this person live", "Approve", names=["王芳", "李娜"])
    out = await session.feed("1")  # ✅ Approve
    assert out[0] == "(the message above was changed)"
    assert out[-1] == "→ a message was sent to Wang Fang"
    assert not _has(out, "  [1]")  # decided: no more buttons

    out = await session.feed("/as resident")
    assert out[1:] == [
        f"Welcome to {COMMUNITY}!",
        "A community worker approved your request to join.",
        f"Household: {HOME}",
        "",
        "Send /menu to see what you can do.",
    ]
    assert await _member_of(uows, "resident") == [(COMMUNITY, HOME, frozenset({Role.RESIDENT}))]
    async with uows() as uow:
        person = (await uow.session.exec(select(Person).where(Person.display_name == "Wang Fang"))).one()
    assert person.phone == "+8613800000000"

    # Li Na, the other worker, finds her copy of the request changed: who decided and how, no buttons left.
    out = await session.feed("/as en-worker")
    changed = out.index("(the message above was changed)")
    assert out[changed + 1] == f"Request to join {COMMUNITY}"
    assert out[-1] == "✅ Approved by 李娜." and not _has(out[changed:], "  [1]")
    assert await session.feed("1") == ["There is no choice 1 here."]


async def test_a_request_rejected_with_a_reason(session: ConsoleSession, uows: UnitOfWorkFactory) -> None:
    await _ask_to_join(session, share_phone=False)

    out = await _script(session, "/as en-worker", "2")  # ❌ Reject
    assert _has(out, "Why do you reject this request? The requester is told.")
    assert out[-5:] == [
        "  [1] Not a resident here",
        "  [2] Can't confirm the household",
        "  [3] Duplicate",
        "  [4] Other",
        "  [5] ← Back",
    ]
    out = await session.feed("5")  # back to Approve / Reject
    assert out[-2:] == ["  [1] ✅ Approve", "  [2] ❌ Reject"]
    out = await _script(session, "2", "2")  # Reject: can't confirm the household
    assert _has(out, "❌ Rejected.") and out[-1] == "→ a message was sent to Wang Fang"

    out = await session.feed("/as resident")
    assert out[1:] == [
        f"Your request to join {COMMUNITY} was not approved.",
        "The community worker could not confirm your household.",
        "If you think this is a mistake, talk to your community worker, or send /start to try again.",
    ]
    assert await _member_of(uows, "resident") == []
    async with uows() as uow:
        request = (await uow.session.exec(select(JoinRequest))).one()
    assert request.status == JoinRequestStatus.REJECTED and request.reason == "household_unconfirmed"


async def test_the_requester_hears_in_chinese_when_they_read_chinese(session: ConsoleSession) -> None:
    await _script(session, "/as resident", "/language", "1")  # 中文
    await _ask_to_join(session, "王芳")
    await _script(session, "/as en-worker", "2", "1")

    out = await session.feed("/as resident")

    assert _speaks_chinese(out, "was not approved", "could not find you", names=["王芳"])


async def test_the_worker_lists_requests_and_decides_from_the_list(
    session: ConsoleSession, uows: UnitOfWorkFactory
) -> None:
    out = await _script(session, "/as en-worker", "/requests")
    assert out == ["No join requests are waiting."]
    await _ask_to_join(session)

    out = await _script(session, "/as en-worker", "/requests")
    assert out[0] == "One join request is waiting:"
    assert _has(out, f"Request to join {COMMUNITY}") and _has(out, "Name: 王芳") and _has(out, "Phone: +8613800000000")
    assert _has(out, "Asked on Mar 1, 2026, 5:00:00\u202fPM")
    out = await session.feed("1")
    assert _has(out, "✅ Approved.")
    assert await _member_of(uows, "resident") == [(COMMUNITY, HOME, frozenset({Role.RESIDENT}))]


async def test_a_phone_not_shared_is_not_stored(session: ConsoleSession, uows: UnitOfWorkFactory) -> None:
    out = await _script(session, "/as resident", "/start", "2", "王芳", HOME, "1")  # Skip
    assert _has(out, "Phone: not shared")
    await _script(session, "1", "/as en-worker", "1")
    async with uows() as uow:
        person = (await uow.session.exec(select(Person).where(Person.display_name == "Wang Fang"))).one()
    assert person.phone is None


async def test_someone_elses_contact_is_refused(
    session: ConsoleSession, conversation: Conversation, uows: UnitOfWorkFactory
) -> None:
    await _script(session, "/as resident", "/start", "2", "王芳", HOME)
    sender = Sender("console", RESIDENT.key, RESIDENT.key, RESIDENT.name, RESIDENT.language_code)

    replies = await conversation.handle(Event(sender, ContactShared("+8613900000000", contact_account_id="77")))

    assert [r.text for r in replies if isinstance(r, SendText)] == [
        "Please share your own phone number with the button, not someone else's contact."
    ]
    out = await session.feed("/contact +8613800000000")  # their own is still welcome
    assert _has(out, "Phone: +8613800000000")


async def test_cancel_leaves_the_form(session: ConsoleSession, uows: UnitOfWorkFactory) -> None:
    await _script(session, "/as resident", "/start", "2", "王芳")

    assert await session.feed("/cancel") == ["Cancelled. Nothing was saved."]
    assert await session.feed(HOME) == ["I wasn't expecting a message just now. Send /menu to see what you can do."]
    assert await session.feed("/cancel") == ["There is nothing to cancel."]
    async with uows() as uow:
        assert (await uow.session.exec(select(JoinRequest))).all() == []


async def test_cancel_on_the_summary_sends_nothing(session: ConsoleSession, uows: UnitOfWorkFactory) -> None:
    out = await _script(session, "/as resident", "/start", "2", "王芳", HOME, "1", "2")  # Skip, Cancel
    assert out == ["(the message above was changed)", "Cancelled. Nothing was sent."]
    async with uows() as uow:
        assert (await uow.session.exec(select(JoinRequest))).all() == []


async def test_a_second_request_waits_for_the_first(session: ConsoleSession) -> None:
    await _ask_to_join(session)

    out = await _script(session, "/start")
    assert _has(out, f"Your request to join {COMMUNITY} is waiting for a community worker.")
    out = await session.feed("2")
    assert out == [f"Your request to join {COMMUNITY} is waiting for a community worker. You will get a message here."]


async def test_bad_input_is_refused_and_asked_again(session: ConsoleSession) -> None:
    await _script(session, "/as resident", "/start", "2")

    assert await session.feed("x" * 101) == ["A name needs 1 to 100 characters."]
    out = await session.feed("王芳")
    assert out[0].startswith("Where do you live?")


async def test_with_two_communities_the_requester_chooses(session: ConsoleSession, uows: UnitOfWorkFactory) -> None:
    async with uows() as uow:
        await add_community(uow, name="稻香村", kind=CommunityKind.VILLAGE)
        await add_community(uow, name="石门二路街道", kind=CommunityKind.STREET)  # a street takes no residents
        await uow.commit()

    out = await _script(session, "/as resident", "/start", "2")
    assert out[-2:] == [f"  [1] {COMMUNITY}", "  [2] 稻香村"]
    out = await session.feed("2")
    assert _has(out, "Community: 稻香村") and _has(out, "Ask to join 稻香村")
    out = await _script(session, "王芳", "5组 12号", "1", "1")
    assert _has(out, "Your request to join 稻香村 has been sent.")
    assert not _has(out, "a message was sent")  # 稻香村 has no worker yet: nobody to tell


async def test_a_name_with_markup_emoji_rtl_and_zero_width_is_kept_and_shown_escaped(
    session: ConsoleSession, conversation: Conversation, uows: UnitOfWorkFactory
) -> None:
    name = "<b>王&芳</b> 🏠 مرحبا\u200f\u200b\u200d"
    await _ask_to_join(session, name)
    async with uows() as uow:
        request = (await uow.session.exec(select(JoinRequest))).one()
    assert request.name == name

    sender = Sender("console", EN_WORKER.key, EN_WORKER.key, EN_WORKER.name, EN_WORKER.language_code)
    replies = await conversation.handle(Event(sender, Command("requests")))
    html = "\n".join(r.text for r in replies if isinstance(r, SendText))
    assert "Name: &lt;b&gt;王&amp;芳&lt;/b&gt; 🏠 مرحبا\u200f\u200b\u200d" in html
    assert "<b>王" not in html

    out = await _script(session, "/as en-worker", "1", "/as resident")
    assert _has(out, f"Welcome to {COMMUNITY}!")
