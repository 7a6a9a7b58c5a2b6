"""Q&A entries: keywords found inside a message (normalised for case, width and punctuation, in
Chinese and English), the most specific entry first."""

from __future__ import annotations

import pytest

from apps.bots.knowledge import match_knowledge, normalize_question
from tests.factories import make_knowledge

pytestmark = pytest.mark.django_db


def answer(bot, text):
    entry = match_knowledge(bot, text)
    return entry.answer if entry else None


def test_a_chinese_keyword_matches_inside_a_longer_message(bot):
    make_knowledge(bot, "营业时间", "每天 9:00–21:00。", keywords="几点开门")
    assert answer(bot, "你们几点开门") == "每天 9:00–21:00。"
    assert answer(bot, "请问，你们几点开门？") == "每天 9:00–21:00。"
    assert answer(bot, "你们 几点 开门") == "每天 9:00–21:00。"  # spaces between Chinese words mean nothing
    assert answer(bot, "你们几点关门") is None


def test_english_keywords_match_whole_words_whatever_the_case_or_width(bot):
    make_knowledge(bot, "Refunds", "Refunds take five working days.", keywords="refund, money back")
    assert answer(bot, "How do I get a REFUND?") == "Refunds take five working days."
    assert answer(bot, "Ｃａｎ I get my ｍｏｎｅｙ ｂａｃｋ！") == "Refunds take five working days."  # full width
    assert answer(bot, "was it refunded") is None  # not a word of the message
    assert answer(bot, "退款refund怎么办") == "Refunds take five working days."  # beside Chinese: still a word


def test_the_most_specific_entry_wins(bot):
    make_knowledge(bot, "Opening hours", "9 to 9.", keywords="开门")
    make_knowledge(bot, "Holiday hours", "10 to 5 during the Spring Festival.", keywords="春节几点开门")
    assert answer(bot, "春节几点开门呀") == "10 to 5 during the Spring Festival."
    assert answer(bot, "明天几点开门") == "9 to 9."
    # An exact question beats any keyword.
    make_knowledge(bot, "春节几点开门呀", "Exactly this.", keywords="")
    assert answer(bot, "春节几点开门呀？") == "Exactly this."


def test_chinese_keyword_separators_and_disabled_entries(bot):
    make_knowledge(bot, "发票", "电子发票 24 小时内发出。", keywords="开发票，电子发票、报销")
    make_knowledge(bot, "Old", "stale", keywords="报销流程", enabled=False)
    assert answer(bot, "我要报销流程") == "电子发票 24 小时内发出。"


def test_normalisation_is_width_case_and_punctuation_blind():
    assert normalize_question("Ｗｈａｔ　ＩＳ， this？！") == "what is this"
    assert normalize_question("你们 几点 开门？") == "你们几点开门"
    assert normalize_question("几点开门 open now") == "几点开门open now"
