"""Language detection (lingua among the tenant's languages), a conversation's dominant language,
and the reply-language instruction."""

from __future__ import annotations

import pytest

from apps.core.language import detect, dominant_language, parse_languages, reply_language_instruction

SEVEN = ("zh", "en", "ja", "ko", "fr", "de", "es")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("你好，请问你们几点开门？", "zh"),
        ("When do you open tomorrow?", "en"),
        ("こんにちは、明日は何時に開きますか？", "ja"),  # kanji too: the old heuristic said "zh"
        ("안녕하세요, 내일 몇 시에 여나요?", "ko"),  # the old heuristic said "en" (no Latin, no CJK)
        ("Bonjour, à quelle heure ouvrez-vous demain ?", "fr"),  # the old heuristic said "en"
        ("Guten Tag, wann öffnen Sie morgen?", "de"),
    ],
)
def test_detects_the_language_among_the_tenants(text, expected):
    assert detect(text, SEVEN) == expected


def test_only_the_enabled_languages_are_chosen():
    assert detect("Bonjour, à quelle heure ouvrez-vous demain ?", ("zh", "en")) == "en"
    assert detect("こんにちは、明日は何時に開きますか？", ("zh", "en")) in ("zh", "en")
    assert detect("anything at all", ("ja",)) == "ja"


def test_text_without_letters_keeps_the_default():
    assert detect("12345 :) 👍", SEVEN, default="zh") == "zh"
    assert detect("", SEVEN, default="ja") == "ja"


def test_tenant_language_lists_are_read_forgivingly():
    assert parse_languages("zh-Hans, EN ,ja,xx,zh") == ("zh", "en", "ja")
    assert parse_languages("") == ("zh", "en")


def test_a_short_latin_word_does_not_flip_a_chinese_conversation():
    turns = [("zh", "你好，我想查询一下我的订单状态"), ("zh", "订单号是 12345"), ("en", "ok")]
    assert dominant_language(turns) == "zh"


def test_a_real_message_in_another_language_moves_the_conversation():
    turns = [("zh", "你好"), ("en", "Actually, could you answer in English from now on? My colleague reads this.")]
    assert dominant_language(turns) == "en"


def test_a_tie_goes_to_the_more_recent_language():
    assert dominant_language([("en", "hello"), ("fr", "salut")]) == "fr"
    assert dominant_language([], default="ja") == "ja"


def test_reply_instruction_names_the_language_in_itself():
    assert reply_language_instruction("zh") == "请始终使用简体中文回答。"
    assert reply_language_instruction("zh-CN") == "请始终使用简体中文回答。"
    assert "日本語" in reply_language_instruction("ja")
    assert reply_language_instruction("xx") == "Always answer in English."
