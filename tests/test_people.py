from __future__ import annotations

from community.models import ChannelAccount
from community.people import identify
from community.unit_of_work import UnitOfWorkFactory


async def test_first_contact_creates_a_person_and_the_second_finds_them(uows: UnitOfWorkFactory) -> None:
    async with uows() as uow:
        first = await identify(uow, channel="telegram", external_id="42", chat_id="42", display_name="王芳 <b>")
        await uow.commit()
    async with uows() as uow:
        again = await identify(
            uow, channel="telegram", external_id="42", chat_id="42", display_name="x", language_code="en"
        )
        await uow.commit()
    assert first.is_new and not again.is_new
    assert again.person_id == first.person_id
    assert again.person.display_name == "王芳 <b>"
    assert again.account.language_code == "en"


async def test_someone_marked_unreachable_who_writes_again_is_reachable_again(uows: UnitOfWorkFactory) -> None:
    # The sender marks an account unreachable when Telegram says the person blocked the bot; a blocked bot gets
    # no messages from them, so a message means they unblocked it.
    async with uows() as uow:
        first = await identify(uow, channel="telegram", external_id="42", chat_id="42", display_name="王芳")
        first.account.unreachable_since = uow.clock.now()
        uow.session.add(first.account)
        await uow.commit()
    async with uows() as uow:
        again = await identify(uow, channel="telegram", external_id="42", chat_id="42", display_name="王芳")
        await uow.commit()
    async with uows() as uow:
        stored = await uow.session.get(ChannelAccount, again.account.id)
    assert stored is not None and stored.unreachable_since is None
