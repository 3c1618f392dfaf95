"""A demo street with its communities and people, so every flow can be tried in the console without setup.

Everyone is created the way real people are: a console channel account through people.identify (exactly what a
first message does), memberships through communities.add_member (so the audit log records them), households
through communities.household. The console switches between people by their key, which is both their console
account id and their chat id."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import col, select

from community.communities import add_community, add_member, household
from community.models import ChannelAccount, Community, Person
from community.people import identify, set_language
from community.roles import CommunityKind, Role
from community.unit_of_work import UnitOfWork
from i18n import N_

CONSOLE = "console"
DEMO_REASON = "demo"

STREET = "示范街道"
WUTONG = "梧桐社区"
YINXING = "银杏社区"
DAOXIANG = "稻香村"


@dataclass(frozen=True, slots=True)
class _HouseholdSpec:
    label: str
    building: str
    unit: str | None
    room: str
    resident_group: str | None = None  # 居民小组 / 村民小组: notices can go to one group


@dataclass(frozen=True, slots=True)
class _PersonSpec:
    key: str
    name: str
    community: str
    roles: frozenset[Role]
    description: str  # English message id; %(community)s and %(household)s are filled in
    household: _HouseholdSpec | None = None
    language: str | None = None  # the person's own choice (Person.language)
    language_code: str | None = None  # what their (console) client reports
    phone: str | None = None  # what /contact shares in the console; made up, in a range no one is given


_COMMUNITIES: tuple[tuple[str, CommunityKind], ...] = (
    (WUTONG, CommunityKind.NEIGHBOURHOOD),
    (YINXING, CommunityKind.NEIGHBOURHOOD),
    (DAOXIANG, CommunityKind.VILLAGE),
)

# Buildings and residents' groups differ between households, so a notice's audience can single some out.
_WANG_HOME = _HouseholdSpec("3号楼 2单元 501", "3号楼", "2单元", "501", "第一居民小组")
_CHEN_HOME = _HouseholdSpec("7号楼 1单元 302", "7号楼", "1单元", "302", "第一居民小组")
_ZHANG_HOME = _HouseholdSpec("12号楼 3单元 1102", "12号楼", "3单元", "1102", "第二居民小组")
# 5号楼 is a building of its own, so the other buildings' audiences keep their people. With its residents a
# consultation for the whole community reaches k (community.anonymity, 5 by default): seven residents, so still
# after a /forget or two, and five households for one voice per household.
_ZHENG_HOME = _HouseholdSpec("5号楼 1单元 201", "5号楼", "1单元", "201", "第二居民小组")
_HUANG_HOME = _HouseholdSpec("5号楼 2单元 602", "5号楼", "2单元", "602", "第二居民小组")
# Village households are numbered by villagers' group (组) and house number, without units. Five households, so a
# consultation for the whole village reaches k as well.
_ZHAO_HOME = _HouseholdSpec("5组 12号", "5组", None, "12号", "5组")
_QIAN_HOME = _HouseholdSpec("5组 3号", "5组", None, "3号", "5组")
_MA_HOME = _HouseholdSpec("5组 7号", "5组", None, "7号", "5组")
_HE_HOME = _HouseholdSpec("5组 15号", "5组", None, "15号", "5组")
_LUO_HOME = _HouseholdSpec("5组 21号", "5组", None, "21号", "5组")

_PEOPLE: tuple[_PersonSpec, ...] = (
    _PersonSpec(
        "worker",
        "李娜",
        WUTONG,
        frozenset({Role.COMMUNITY_WORKER}),
        N_("community worker of %(community)s"),
        language_code="zh-hans",
        phone="+8613800000001",
    ),
    _PersonSpec(
        "committee",
        "张伟",
        WUTONG,
        frozenset({Role.COMMITTEE_MEMBER, Role.RESIDENT, Role.HOUSEHOLD_REPRESENTATIVE}),
        N_("residents' committee member of %(community)s, lives in %(household)s"),
        household=_ZHANG_HOME,
        language_code="zh-hans",
        phone="+8613800000002",
    ),
    _PersonSpec(
        "street",
        "周敏",
        STREET,
        frozenset({Role.STREET_ADMINISTRATOR}),
        N_("street administrator of %(community)s"),
        language_code="zh-hans",
        phone="+8613800000003",
    ),
    _PersonSpec(
        "wang",
        "王芳",
        WUTONG,
        frozenset({Role.RESIDENT, Role.HOUSEHOLD_REPRESENTATIVE}),
        N_("resident of %(community)s, household representative of %(household)s"),
        household=_WANG_HOME,
        language_code="zh-hans",
        phone="+8613800000004",
    ),
    _PersonSpec(
        "liu",
        "刘洋",
        WUTONG,
        frozenset({Role.RESIDENT}),
        N_("resident of %(community)s, lives in %(household)s"),
        household=_WANG_HOME,
        language_code="zh-hans",
        phone="+8613800000005",
    ),
    _PersonSpec(
        "chen",
        "陈晓",
        WUTONG,
        frozenset({Role.RESIDENT, Role.HOUSEHOLD_REPRESENTATIVE}),
        N_("resident of %(community)s, household representative of %(household)s, reads English"),
        household=_CHEN_HOME,
        language="en",
        language_code="en",
        phone="+8613800000006",
    ),
    _PersonSpec(
        "zhao",
        "赵大山",
        DAOXIANG,
        frozenset({Role.RESIDENT, Role.HOUSEHOLD_REPRESENTATIVE}),
        N_("villager of %(community)s, household representative of %(household)s"),
        household=_ZHAO_HOME,
        language_code="zh-hans",
        phone="+8613800000007",
    ),
    _PersonSpec(
        "zheng",
        "郑丽",
        WUTONG,
        frozenset({Role.RESIDENT, Role.HOUSEHOLD_REPRESENTATIVE}),
        N_("resident of %(community)s, household representative of %(household)s"),
        household=_ZHENG_HOME,
        language_code="zh-hans",
        phone="+8613800000008",
    ),
    _PersonSpec(
        "wu",
        "吴强",
        WUTONG,
        frozenset({Role.RESIDENT}),
        N_("resident of %(community)s, lives in %(household)s"),
        household=_ZHENG_HOME,
        language_code="zh-hans",
        phone="+8613800000009",
    ),
    _PersonSpec(
        "huang",
        "黄建华",
        WUTONG,
        frozenset({Role.RESIDENT, Role.HOUSEHOLD_REPRESENTATIVE}),
        N_("resident of %(community)s, household representative of %(household)s"),
        household=_HUANG_HOME,
        language_code="zh-hans",
        phone="+8613800000010",
    ),
    _PersonSpec(
        "qian",
        "钱德福",
        DAOXIANG,
        frozenset({Role.RESIDENT, Role.HOUSEHOLD_REPRESENTATIVE}),
        N_("villager of %(community)s, household representative of %(household)s"),
        household=_QIAN_HOME,
        language_code="zh-hans",
        phone="+8613800000011",
    ),
    _PersonSpec(
        "ma",
        "马秀英",
        DAOXIANG,
        frozenset({Role.RESIDENT, Role.HOUSEHOLD_REPRESENTATIVE}),
        N_("villager of %(community)s, household representative of %(household)s"),
        household=_MA_HOME,
        language_code="zh-hans",
        phone="+8613800000012",
    ),
    _PersonSpec(
        "he",
        "何国庆",
        DAOXIANG,
        frozenset({Role.RESIDENT, Role.HOUSEHOLD_REPRESENTATIVE}),
        N_("villager of %(community)s, household representative of %(household)s"),
        household=_HE_HOME,
        language_code="zh-hans",
        phone="+8613800000013",
    ),
    _PersonSpec(
        "luo",
        "罗春梅",
        DAOXIANG,
        frozenset({Role.RESIDENT, Role.HOUSEHOLD_REPRESENTATIVE}),
        N_("villager of %(community)s, household representative of %(household)s"),
        household=_LUO_HOME,
        language_code="zh-hans",
        phone="+8613800000014",
    ),
)

# A console key that nobody of the demo has: someone who is not a member of any community yet, to try joining.
NEWCOMER_KEY = "guest"
NEWCOMER_NAME = "新居民"
NEWCOMER_DESCRIPTION = N_("not a member of any community yet: try joining with an invitation code")


@dataclass(frozen=True, slots=True)
class DemoPerson:
    """Who someone of the demo is, for the console's list of people you can be."""

    key: str  # console account id and chat id
    name: str
    person_id: int
    community: str
    household: str | None
    roles: frozenset[Role]
    description: str  # English message id; translate with community= and household=
    language: str | None
    language_code: str | None
    phone: str | None

    @property
    def description_params(self) -> dict[str, str]:
        return {"community": self.community, "household": self.household or ""}


@dataclass(frozen=True, slots=True)
class DemoPeople:
    created: bool  # False: the database already had communities, and nothing was added
    street: str
    communities: tuple[str, ...]
    people: tuple[DemoPerson, ...]  # the demo people found in the database, in the demo's order

    @property
    def outcome(self) -> str:
        """What happened, as an English message id."""
        if self.created and not self.people:
            return N_(
                "Added the demo: a street, two neighbourhoods and a village, without the console's people. "
                "Invite people with `linli invite create`."
            )
        if self.created:
            return N_("Added the demo: a street, two neighbourhoods, a village and the people below.")
        return N_("The database already has communities, so no demo data was added.")

    def by_key(self, key: str) -> DemoPerson:
        for person in self.people:
            if person.key == key:
                return person
        raise KeyError(key)


async def _has_community(uow: UnitOfWork) -> bool:
    return (await uow.session.exec(select(Community.id).limit(1))).first() is not None


async def seed_demo(uow: UnitOfWork, *, people: bool = True) -> DemoPeople:
    """Add the demo street, communities, households and people, only into a database without any community.

    people=False: the communities only, without the console's people (their accounts are on the console channel,
    which a database meant for Telegram never serves). Runs in the caller's unit of work; the caller commits. A
    second call finds communities and adds nothing."""
    if await _has_community(uow):
        return DemoPeople(
            created=False,
            street=STREET,
            communities=tuple(name for name, _ in _COMMUNITIES),
            people=await demo_people(uow),
        )
    street = await add_community(uow, name=STREET, kind=CommunityKind.STREET)
    assert street.id is not None
    ids: dict[str, int] = {STREET: street.id}
    for name, kind in _COMMUNITIES:
        community = await add_community(uow, name=name, kind=kind, parent_id=street.id)
        assert community.id is not None
        ids[name] = community.id
    seeded: list[DemoPerson] = []
    for spec in _PEOPLE if people else ():
        identity = await identify(
            uow,
            channel=CONSOLE,
            external_id=spec.key,
            chat_id=spec.key,
            display_name=spec.name,
            language_code=spec.language_code,
        )
        if spec.language is not None:
            await set_language(uow, identity.person, spec.language)
        community_id = ids[spec.community]
        household_id: int | None = None
        if spec.household is not None:
            home = await household(uow, community_id, spec.household.label)
            home.building, home.unit, home.room = spec.household.building, spec.household.unit, spec.household.room
            home.resident_group = spec.household.resident_group
            uow.session.add(home)
            household_id = home.id
        await add_member(
            uow,
            person_id=identity.person_id,
            community_id=community_id,
            roles=spec.roles,
            household_id=household_id,
            reason=DEMO_REASON,
        )
        seeded.append(_person(spec, identity.person_id))
    await uow.session.flush()
    return DemoPeople(
        created=True,
        street=STREET,
        communities=tuple(name for name, _ in _COMMUNITIES),
        people=tuple(seeded),
    )


def _person(spec: _PersonSpec, person_id: int) -> DemoPerson:
    return DemoPerson(
        key=spec.key,
        name=spec.name,
        person_id=person_id,
        community=spec.community,
        household=spec.household.label if spec.household else None,
        roles=spec.roles,
        description=spec.description,
        language=spec.language,
        language_code=spec.language_code,
        phone=spec.phone,
    )


async def demo_people(uow: UnitOfWork) -> tuple[DemoPerson, ...]:
    """The demo's people still in the database (a person may have used /forget), by their console accounts."""
    keys = [spec.key for spec in _PEOPLE]
    rows = (
        await uow.session.exec(
            select(ChannelAccount.external_id, Person.id)
            .join(Person, col(Person.id) == col(ChannelAccount.person_id))
            .where(ChannelAccount.channel == CONSOLE, col(ChannelAccount.external_id).in_(keys))
        )
    ).all()
    found = {key: person_id for key, person_id in rows if person_id is not None}
    return tuple(_person(spec, found[spec.key]) for spec in _PEOPLE if spec.key in found)
