"""The features' manifests (bot.manifest) and their composition: every action of the kernel's table is owned by
one feature, the default features give the menu Linli always had, and two features cannot claim one name."""

from __future__ import annotations

import pytest

from bot.features import DEFAULT_MANIFESTS
from bot.manifest import Features, Manifest, MenuEntry
from community import settings
from community.features import Feature, FeatureAction, Setting
from community.people import identify
from community.permissions import PERMISSIONS, roles_for
from community.privacy import KERNEL_SECTIONS, personal_data
from community.roles import Action, Role
from community.unit_of_work import UnitOfWorkFactory
from consultation.personal_data import ConsultationsProvider


def test_every_action_of_the_kernel_table_is_declared_by_one_default_feature() -> None:
    declared = [action for manifest in DEFAULT_MANIFESTS for action in manifest.feature.actions]
    assert sorted(a.value for a in declared) == sorted(a.value for a in Action)
    features = Features.of(DEFAULT_MANIFESTS)
    for action in Action:
        assert roles_for(features.actions[action.value]) == PERMISSIONS[action]


def test_the_default_menu_is_the_one_linli_always_had() -> None:
    menu = Features.of(DEFAULT_MANIFESTS).menu
    assert [entry.command for entry in menu] == [
        "invite",
        "requests",
        "members",
        "notice",
        "notices",
        "newconsultation",
        "consultations",
        "consult",
        "notifications",
        "language",
        "privacy",
        "help",
    ]


async def test_the_export_file_sections_of_the_kernel_are_the_reserved_ones(uows: UnitOfWorkFactory) -> None:
    async with uows() as uow:
        me = await identify(uow, channel="console", external_id="me", chat_id="me", display_name="我")
        data = await personal_data(uow, me.person_id)
    assert set(data.as_json()) == KERNEL_SECTIONS


def test_consultations_are_the_default_features_with_a_personal_data_provider() -> None:
    features = Features.of(DEFAULT_MANIFESTS)
    assert [type(provider) for provider in features.providers] == [ConsultationsProvider]
    assert len(features.erasers) == 1


@pytest.mark.parametrize(
    "extra",
    [
        Manifest(feature=Feature(name="notices")),
        Manifest(feature=Feature(name="extra", actions=(Action.SEND_NOTICE,))),
        Manifest(feature=Feature(name="extra", actions=(FeatureAction("send_notice", frozenset({Role.RESIDENT})),))),
        Manifest(feature=Feature(name="extra"), menu=(MenuEntry("help", "Help"),)),
        Manifest(feature=Feature(name="extra", community_settings=(settings.DIGEST_TIME,))),
        Manifest(feature=Feature(name="extra", personal_data=ConsultationsProvider())),
        Manifest(feature=Feature(name="extra", personal_data=ConsultationsProvider()), privacy=lambda _l, _s: ""),
    ],
    ids=[
        "feature name",
        "kernel action",
        "action name",
        "menu command",
        "setting",
        "provider without a section",
        "personal-data section",
    ],
)
def test_two_features_cannot_claim_one_name(extra: Manifest) -> None:
    with pytest.raises(ValueError):
        Features.of((*DEFAULT_MANIFESTS, extra))


def test_a_setting_override_must_be_declared_and_of_its_type() -> None:
    with pytest.raises(ValueError):
        Features.of(DEFAULT_MANIFESTS, {"nobody.declares": 1})
    declaring = Manifest(feature=Feature(name="extra", settings=(Setting("extra.limit", 3, "x"),)))
    assert Features.of((*DEFAULT_MANIFESTS, declaring), {"extra.limit": 4}).settings[declaring.feature.settings[0]] == 4
    with pytest.raises(TypeError):
        Features.of((*DEFAULT_MANIFESTS, declaring), {"extra.limit": "four"})
