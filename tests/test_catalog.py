"""i18n.catalog: extraction, merging, compiling and checking the gettext catalogs.

Everything but the last tests works on small catalogs and projects built in tmp_path; the real catalogs are only
read (and compiled into tmp_path), never written."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog

import i18n.translator
from i18n import Catalogs
from i18n.catalog import (
    ROOT,
    CheckResult,
    Paths,
    check,
    check_catalog,
    cmd_check,
    compile_catalog,
    extract,
    load,
    placeholders,
    po_path,
    render,
    untranslated,
    update,
    write_template,
)

CJK = re.compile(r"[\u4e00-\u9fff]")

Entry = str | tuple[str, str]


def make_template(*ids: Entry) -> Catalog:
    template = Catalog(domain="linli", fuzzy=True)
    for msgid in ids:
        template.add(msgid, None, [("bot/x.py", 1)])
    return template


def write_po(
    path: Path, language: str, entries: dict[Entry, str | tuple[str, ...]], fuzzy: Entry | None = None
) -> None:
    catalog = Catalog(locale=language, domain="linli", fuzzy=False)
    for msgid, msgstr in entries.items():
        catalog.add(msgid, msgstr, [("bot/x.py", 1)], flags=("fuzzy",) if msgid == fuzzy else ())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(render(catalog))


PLURAL = ("%(num)s neighbour", "%(num)s neighbours")
IDS: tuple[Entry, ...] = ("That did not work.", "Try again after %(until)s.", PLURAL)
ZH: dict[Entry, str | tuple[str, ...]] = {
    "That did not work.": "操作没有成功。",
    "Try again after %(until)s.": "请在 %(until)s 之后再试。",
    PLURAL: ("%(num)s 位邻居",),
}
EN: dict[Entry, str | tuple[str, ...]] = {
    "That did not work.": "That did not work.",
    "Try again after %(until)s.": "Try again after %(until)s.",
    PLURAL: PLURAL,
}


def string_of(catalog: Catalog, msgid: str) -> object:
    message = catalog.get(msgid)
    assert message is not None, msgid
    return tuple(message.string) if isinstance(message.string, list | tuple) else message.string


def run_check(tmp_path: Path, zh: dict[Entry, str | tuple[str, ...]], fuzzy: Entry | None = None) -> CheckResult:
    paths = Paths(root=tmp_path, locales=tmp_path / "locales")
    write_po(paths.po("zh_Hans"), "zh_Hans", zh, fuzzy)
    write_po(paths.po("en"), "en", EN)
    return check(paths, make_template(*IDS))


def test_a_complete_catalog_passes(tmp_path: Path) -> None:
    result = run_check(tmp_path, ZH)
    assert result.ok, result.problems
    assert result.messages == 3


def test_a_missing_chinese_translation_is_reported(tmp_path: Path) -> None:
    zh = {k: v for k, v in ZH.items() if k != "That did not work."}
    result = run_check(tmp_path, zh)
    assert result.problems == ['zh_Hans: missing "That did not work.": run `python -m i18n.catalog update`']


def test_an_empty_translation_is_reported(tmp_path: Path) -> None:
    result = run_check(tmp_path, {**ZH, "That did not work.": "", PLURAL: ("",)})
    assert result.problems == [
        'zh_Hans: untranslated "That did not work."',
        'zh_Hans: untranslated "%(num)s neighbour"',
    ]


def test_a_fuzzy_translation_is_reported(tmp_path: Path) -> None:
    result = run_check(tmp_path, ZH, fuzzy="Try again after %(until)s.")
    assert len(result.problems) == 1
    assert result.problems[0].startswith('zh_Hans: fuzzy "Try again after %(until)s."')


def test_a_renamed_placeholder_is_reported(tmp_path: Path) -> None:
    result = run_check(tmp_path, {**ZH, "Try again after %(until)s.": "请在 %(time)s 之后再试。"})
    assert result.problems == [
        'zh_Hans: placeholders differ in "Try again after %(until)s.": msgstr has %(time)s, the id has %(until)s'
    ]


def test_a_placeholder_dropped_from_a_plural_form_is_reported(tmp_path: Path) -> None:
    result = run_check(tmp_path, {**ZH, PLURAL: ("几位邻居",)})
    assert result.problems == [
        'zh_Hans: placeholders differ in "%(num)s neighbour": msgstr[0] has none, the id has %(num)s'
    ]


def test_a_lone_percent_sign_in_a_format_string_is_reported(tmp_path: Path) -> None:
    result = run_check(tmp_path, {**ZH, "Try again after %(until)s.": "100% 请在 %(until)s 之后再试。"})
    assert len(result.problems) == 1
    assert "stray %" in result.problems[0]


def test_obsolete_and_stale_entries_are_only_warnings(tmp_path: Path) -> None:
    result = run_check(tmp_path, {**ZH, "Gone from the sources": "已删除"})
    assert result.ok
    assert result.warnings == [
        'zh_Hans: "Gone from the sources" is no longer in the sources (obsolete at the next update)'
    ]


def test_the_english_catalog_is_checked_too(tmp_path: Path) -> None:
    paths = Paths(root=tmp_path, locales=tmp_path / "locales")
    write_po(paths.po("zh_Hans"), "zh_Hans", ZH)
    write_po(paths.po("en"), "en", {k: v for k, v in EN.items() if k != PLURAL})
    result = check(paths, make_template(*IDS))
    assert result.problems == ['en: missing "%(num)s neighbour": run `python -m i18n.catalog update`']


def test_a_missing_catalog_file_is_reported(tmp_path: Path) -> None:
    result = check_catalog(make_template(*IDS), po_path(tmp_path, "zh_Hans"), "zh_Hans")
    assert len(result.problems) == 1
    assert "does not exist" in result.problems[0]


def test_placeholders_are_compared_by_name_and_type() -> None:
    assert placeholders("%(a)s and %(b)d, 100%%") == ({"%(a)s": 1, "%(b)d": 1}, 0)
    assert placeholders("%s then %d") == ({"#1%s": 1, "#2%d": 1}, 0)
    assert placeholders("50%") == ({}, 1)


def test_update_creates_both_catalogs_and_fills_in_english(tmp_path: Path) -> None:
    paths = Paths(root=tmp_path, pot=tmp_path / "linli.pot", locales=tmp_path / "locales")
    write_template(make_template(*IDS), paths.pot)
    assert set(update(paths)) == {paths.po("zh_Hans"), paths.po("en")}

    en = load(paths.po("en"), "en")
    assert string_of(en, "That did not work.") == "That did not work."
    assert string_of(en, PLURAL[0]) == PLURAL
    zh = load(paths.po("zh_Hans"), "zh_Hans")
    assert zh.num_plurals == 1
    assert string_of(zh, "That did not work.") == ""

    result = check(paths, make_template(*IDS))
    assert result.problems == [
        'zh_Hans: untranslated "That did not work."',
        'zh_Hans: untranslated "Try again after %(until)s."',
        'zh_Hans: untranslated "%(num)s neighbour"',
    ]
    assert update(paths) == []  # nothing changed, nothing rewritten


def test_update_keeps_translations_and_drops_untranslated_obsolete_entries(tmp_path: Path) -> None:
    paths = Paths(root=tmp_path, pot=tmp_path / "linli.pot", locales=tmp_path / "locales")
    write_po(paths.po("zh_Hans"), "zh_Hans", {**ZH, "Old and translated": "旧的", "Old, never translated": ""})
    write_template(make_template(*IDS), paths.pot)
    update(paths)
    zh = load(paths.po("zh_Hans"), "zh_Hans")
    assert string_of(zh, "That did not work.") == "操作没有成功。"
    assert list(zh.obsolete) == ["Old and translated"]


def test_the_template_keeps_its_date_while_its_messages_stay_the_same(tmp_path: Path) -> None:
    pot = tmp_path / "linli.pot"
    assert write_template(make_template(*IDS), pot)
    assert not write_template(make_template(*IDS), pot)
    assert write_template(make_template(*IDS, "New"), pot)


def make_project(tmp_path: Path) -> Paths:
    """A tiny project extracted with the real babel.cfg."""
    shutil.copy(ROOT / "babel.cfg", tmp_path / "babel.cfg")
    (tmp_path / "bot").mkdir()
    (tmp_path / "bot" / "handlers.py").write_text(
        "from sqlalchemy import text\n"
        "from i18n import N_\n"
        'MARKED = N_("Marked for later")\n'
        "def show(l, n, text):\n"
        '    l.text("Hello %(name)s", name="x")\n'
        '    l.label("A button")\n'
        '    l.plural("%(num)s vote", "%(num)s votes", n)\n'
        '    text("SELECT 1")\n'
        "    first = text[0]\n"
        '    """Not a message."""\n'
        '    return l.text("After the subscript")\n',
        encoding="utf-8",
    )
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "page.j2").write_text(
        '{{ _("Hi %(name)s", name=name) }}\n{% trans %}Done: 100% sure{% endtrans %}\n', encoding="utf-8"
    )
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text('l.text("From a test")\n', encoding="utf-8")
    return Paths(root=tmp_path, config=tmp_path / "babel.cfg", pot=tmp_path / "linli.pot", locales=tmp_path / "loc")


def test_extraction_follows_babel_cfg(tmp_path: Path) -> None:
    extraction = extract(make_project(tmp_path))
    ids = [m.id if isinstance(m.id, str) else tuple(m.id) for m in extraction.template if m.id]
    assert ids == [
        "Marked for later",
        "Hello %(name)s",
        "A button",
        ("%(num)s vote", "%(num)s votes"),
        "After the subscript",
        "Hi %(name)s",
        "Done: 100%% sure",  # newstyle gettext: a literal % in {% trans %} is doubled, as at run time
    ]
    assert extraction.warnings == []


def test_an_fstring_in_a_translation_call_fails_the_check(tmp_path: Path) -> None:
    paths = make_project(tmp_path)
    (tmp_path / "bot" / "more.py").write_text('def f(l, name):\n    return l.text(f"Hi {name}")\n', encoding="utf-8")
    extraction = extract(paths)
    assert len(extraction.warnings) == 1
    assert extraction.warnings[0].startswith("bot/more.py:2: f-string")
    assert extraction.warnings[0] in check(paths).problems


def test_the_translator_workflow(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = make_project(tmp_path)
    write_template(extract(paths).template, paths.pot)
    update(paths)
    assert untranslated(paths)[:4] == [
        '"Marked for later"',
        '"Hello %(name)s"',
        '"A button"',
        '"%(num)s vote"  (plural: "%(num)s votes")',
    ]
    assert cmd_check(paths) == 1

    zh = load(paths.po("zh_Hans"), "zh_Hans")
    for message in zh:
        if message.id:
            message.string = ("译文 %(num)s",) if isinstance(message.id, tuple | list) else f"译文 {message.id}"
    paths.po("zh_Hans").write_bytes(render(zh))
    assert untranslated(paths) == []
    capsys.readouterr()
    assert cmd_check(paths) == 0
    assert capsys.readouterr().out == "catalog check: 7 messages, zh_Hans and en complete\n"


def test_the_tool_agrees_with_the_runtime() -> None:
    from i18n import catalog

    assert catalog.DOMAIN == i18n.translator.DOMAIN
    assert catalog.LANGUAGES == i18n.translator.LANGUAGES
    assert Paths().locales == i18n.translator.LOCALES_DIR


def test_the_repo_extraction_leaves_out_tests() -> None:
    template = extract().template
    files = {filename for message in template for filename, _ in message.locations}
    assert files
    assert not any(f.startswith(("tests/", ".venv/", "bench/", "migrations/")) for f in files)
    assert template.get("That did not work.") is not None


def test_the_real_chinese_catalog_compiles_and_loads(tmp_path: Path) -> None:
    mo = tmp_path / "zh_Hans" / "LC_MESSAGES" / "linli.mo"
    assert compile_catalog(Paths().po("zh_Hans"), mo, "zh_Hans") > 0

    zh = Catalogs(locales_dir=tmp_path).get("zh_Hans")
    text = zh.gettext("That did not work.")
    assert text != "That did not work."
    assert CJK.search(text)
    retry = zh.gettext("Too many wrong codes. Try again after %(until)s.", until="15:30")
    assert "15:30" in retry
    assert CJK.search(retry)
