"""PII masking: what must be masked, what must stay as written."""

from __future__ import annotations

import datetime as dt
import json
import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.core.logging import JsonFormatter
from apps.core.pii import cn_id_valid, luhn_valid, mask_text

MASKED = [
    # (text, the secret that must disappear, what the masked form looks like)
    ("call me on 13812345678", "13812345678", "138******78"),
    ("手机13812345678谢谢", "13812345678", "手机138******78谢谢"),
    ("138-1234-5678", "1234", "138-****-**78"),
    ("+86 138 1234 5678", "1234 56", "+86 138 **** **78"),
    ("+8613812345678", "13812345678", "+86138******78"),
    ("0086-13812345678", "13812345678", "******78"),
    ("office 010-12345678", "12345678", "010-******78"),
    ("(010) 12345678", "12345678", "(010) ******78"),
    ("021 1234 5678", "1234 56", "021 **** **78"),
    ("0755-1234567", "1234567", "0755-*****67"),
    ("+1 (415) 555-2671", "555-26", "**71"),
    ("+44 20 7946 0958", "7946", "**58"),
    ("0044 20 7946 0958", "7946", "**58"),
    ("mail alice.wong@example.com please", "alice.wong", "a***@example.com"),
    ("邮箱alice@example.com。", "alice@", "邮箱a***@example.com。"),
    ("x+tag@mail.example.co.uk", "x+tag", "x***@mail.example.co.uk"),
    ("id 11010519491231002X.", "11010519491231002X", "110***********002X."),
    ("身份证号码11010519491231002x", "11010519491231002x", "110***********002x"),
    ("旧身份证110105491231002", "110105491231002", "旧身份证110*********002"),
    ("old id 440301850615123.", "440301850615123", "old id 440*********123."),
    ("card 4111 1111 1111 1111", "4111 1111", "************1111"),
    ("card 4111-1111-1111-1111", "4111-1111", "************1111"),
    ("卡号6222021234567890128", "6222021234567890128", "卡号***************0128"),
]

UNCHANGED = [
    "order 1234567890123",  # 13 digits, not Luhn-valid
    "id 110105194912310021",  # wrong check digit
    "version 2.0.1",
    "2026-11-25 18:00",
    "price 13.50 yuan",
    "ts 1764095520000",
    "ip 192.168.1.10",
    "user@localhost",
    "room 1203, floor 12",
    "订单号 20261125",
    "order 202611251234567",  # 15 digits, but 20 is no province code
    "parcel 110105491399002",  # 15 digits, but no month 13
    "",
]


@pytest.mark.parametrize(("text", "secret", "looks_like"), MASKED)
def test_pii_is_masked(text, secret, looks_like):
    masked = mask_text(text)
    assert secret not in masked
    assert looks_like in masked


@pytest.mark.parametrize("text", UNCHANGED)
def test_ordinary_text_is_left_alone(text):
    assert mask_text(text) == text


def test_masking_twice_changes_nothing_more():
    for text, _, _ in MASKED:
        assert mask_text(mask_text(text)) == mask_text(text)


def test_checksums():
    assert cn_id_valid("11010519491231002X")
    assert not cn_id_valid("110105194912310021")
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("4111111111111112")
    assert not luhn_valid("411111")


def _id_with_check(body17: str) -> str:
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body17 + "10X98765432"[sum(int(d) * w for d, w in zip(body17, weights, strict=True)) % 11]


def _luhn_complete(prefix: str) -> str:
    for check in "0123456789":
        if luhn_valid(prefix + check):
            return prefix + check
    raise AssertionError


# Letters outside a-f: a long run of hex letters and digits is a machine id, kept whole on purpose
# (see test_machine_identifiers_are_kept_whole).
noise = st.text(alphabet=st.sampled_from(list("kmx xyz，。你好 ,.:;!?")), max_size=20)


@settings(max_examples=150, deadline=None)
@given(
    before=noise,
    after=noise,
    mobile=st.from_regex(r"1[3-9]\d{9}", fullmatch=True),
    region=st.from_regex(r"[1-6]\d{5}", fullmatch=True),
    birth=st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2025, 12, 31)).map(lambda d: d.strftime("%Y%m%d")),
    seq=st.from_regex(r"\d{3}", fullmatch=True),
    card=st.from_regex(r"[3-6]\d{14,17}", fullmatch=True).map(_luhn_complete),
)
def test_pii_inside_any_text_never_survives(before, after, mobile, region, birth, seq, card):
    resident_id = _id_with_check(region + birth + seq)
    for secret in (mobile, resident_id, card):
        masked = mask_text(f"{before}{secret}{after}")
        assert secret not in masked


def test_log_lines_are_masked():
    record = logging.LogRecord("parley", logging.INFO, __file__, 1, "user said %s", ("13812345678",), None)
    record.detail = "card 4111 1111 1111 1111"
    line = json.loads(JsonFormatter().format(record))
    assert "13812345678" not in line["message"] and "4111 1111" not in line["detail"]


def test_decimal_fractions_are_not_mistaken_for_cards_or_phones():
    # Durations in log lines (e.g. Celery's "succeeded in 0.25439077600003657s") stay readable.
    for text in ("succeeded in 0.25439077600003657s", "took 1.4111111111111111 s", "ratio 3.13812345678"):
        assert mask_text(text) == text
    assert mask_text("card 4111 1111 1111 1111.") == "card ************1111."


@pytest.mark.parametrize(
    "ident",
    [
        "dcff713b84c04050837401a8600c9ef5",  # uuid4().hex whose digits read like a landline
        "0a13812345678bcdef0123456789abcd",  # ... or like a mobile number
        "3b2f1c6e-0405-4083-9740-1a8600c9ef5d",  # canonical UUID
        "da39a3ee5e6b4b0d3255bfef95601890afd80709",  # SHA-1
    ],
)
def test_machine_identifiers_are_kept_whole(ident):
    # Trace ids must read the same in every process's log lines, or they cannot be followed.
    for text in (ident, f"request_id={ident} done", f"trace {ident}: 13812345678"):
        masked = mask_text(text)
        assert ident in masked
    assert mask_text(f"trace {ident}: 13812345678").endswith(": 138******78")


def test_numbers_run_into_short_words_are_still_masked():
    assert mask_text("add13812345678") == "add138******78"
    assert mask_text("Tel13812345678ok") == "Tel138******78ok"
