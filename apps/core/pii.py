"""PII masking: phone numbers (China mobile and landline, international), e-mail addresses, Chinese
resident ID numbers (18-character ones checksum-validated; the older 15-digit ones by province code
and birth date) and bank card numbers (Luhn-validated).

``mask_text`` is applied to every log line, and to text sent to a model when a bot's PII policy asks.
Validation (checksum / Luhn) keeps ordinary numbers such as order ids from being masked, and
machine identifiers (trace ids, UUIDs, hashes: hex runs of 16+ characters mixing letters and digits)
are left whole, so a log line's ids still match across processes. The
patterns are hand-written because no maintained library covers Chinese identifiers and phone
formats together; ``tests/core/test_pii.py`` holds the cases they must (and must not) match.
"""

from __future__ import annotations

import re

# ASCII local part only: Chinese text often runs straight into an address ("邮箱alice@…").
_EMAIL = re.compile(r"(?<![A-Za-z0-9._%+-])([A-Za-z0-9._%+-]{1,64})@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})")
# 18-digit resident id: 6 region + 8 birth date + 3 sequence + check (digit or X).
_CN_ID = re.compile(r"(?<!\d)([1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[0-9Xx])(?!\d)")
# 15-digit first-generation resident id (issued until 2004, still in old records): province code,
# 4 more region digits, birth date YYMMDD, 3 sequence digits; no check digit, so the province code
# and the date are what tell it from an order number.
_CN_ID15 = re.compile(
    r"(?<![\d*])((?:1[1-5]|2[1-3]|3[1-7]|4[1-6]|5[0-4]|6[1-5]|71|8[12])\d{4}"
    r"\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3})(?![\d*])"
)
# 13-19 digit card numbers, optionally grouped by spaces or dashes. Issued cards never start with 0,
# and a number right after "+" or inside a longer digit group is a phone number, not a card.
_CARD = re.compile(r"(?<![\d+])(?<!\d[ -])(?<!\d\.)([1-9](?:[ -]?\d){12,18})(?![\d])(?![ -]\d)")
# Mainland mobile: 1[3-9]x, 11 digits, optional +86 / 0086 prefix (kept visible).
_CN_MOBILE = re.compile(r"(?<![\d+])(?<!\d\.)((?:\+|00)86[ -]?)?(1[3-9]\d[ -]?\d{4}[ -]?\d{4})(?![\d])")
# International: +CC or 00CC, then 6-14 more digits with optional separators and parentheses.
_INTL_PHONE = re.compile(r"(?<![\w+*])((?:\+|00)[1-9]\d{0,2}(?:[ .-]?\(?\d{1,4}\)?){2,5}\d)(?![\d*])")
# Landline: area code 0xx / 0xxx (optionally in parentheses), then a 7-8 digit number.
# (Phone patterns never start or end next to "*", so a number masked once is not masked again.)
_CN_LANDLINE = re.compile(r"(?<![\d*])(\(?0\d{2,3}\)?[ -]?\d{3,4}[ -]?\d{4})(?![\d*])")

# Machine identifiers: a standalone hex run of 16+ characters with at least one letter and one digit
# (uuid4().hex, SHA digests, message ids), or a canonical hyphenated UUID. Their digit runs can look
# like a phone number ("…c04050837401a…"), but they are never a person's data.
_HEX_ID = re.compile(
    r"(?<![0-9A-Za-z])(?:"
    r"(?=[0-9a-fA-F]*[a-fA-F])(?=[0-9a-fA-F]*[0-9])[0-9a-fA-F]{16,}"
    r"|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r")(?![0-9A-Za-z])"
)

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def cn_id_valid(number: str) -> bool:
    """Whether ``number`` is an 18-character resident id with a correct check character."""
    if len(number) != 18 or not number[:17].isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(number[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == number[17].upper()


def luhn_valid(digits: str) -> bool:
    """Whether ``digits`` (13-19 digits) passes the Luhn check used by bank cards."""
    if not digits.isdigit() or not 13 <= len(digits) <= 19:
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _mask_digits(value: str, keep_head: int, keep_tail: int) -> str:
    """Replace the digits of ``value`` with ``*`` except the first ``keep_head`` and last
    ``keep_tail``; separators and parentheses stay, so the shape remains readable."""
    positions = [i for i, ch in enumerate(value) if ch.isdigit()]
    masked = list(value)
    for i in positions[keep_head : len(positions) - keep_tail]:
        masked[i] = "*"
    return "".join(masked)


def _mask_email(m: re.Match) -> str:
    return f"{m.group(1)[0]}***@{m.group(2)}"


def _mask_id(m: re.Match) -> str:
    value = m.group(1)
    return value[:3] + "*" * 11 + value[-4:] if cn_id_valid(value) else value


def _mask_id15(m: re.Match) -> str:
    value = m.group(1)
    return value[:3] + "*" * 9 + value[-3:]


def _mask_card(m: re.Match) -> str:
    value = m.group(1)
    digits = re.sub(r"[ -]", "", value)
    return "*" * (len(digits) - 4) + digits[-4:] if luhn_valid(digits) else value


def _mask_cn_mobile(m: re.Match) -> str:
    return (m.group(1) or "") + _mask_digits(m.group(2), 3, 2)


def _mask_phone(m: re.Match) -> str:
    value = m.group(1)
    digits = sum(ch.isdigit() for ch in value)
    if not 7 <= digits <= 17:
        return value
    return _mask_digits(value, 3 if digits >= 10 else 2, 2)


def _mask_landline(m: re.Match) -> str:
    value = m.group(1)
    if value.count("(") != value.count(")"):
        return value
    digits = sum(ch.isdigit() for ch in value)
    return _mask_digits(value, 3 if value.lstrip("(").startswith(("01", "02")) else 4, 2) if digits >= 10 else value


def mask_text(text: str) -> str:
    """Return ``text`` with every recognised piece of PII masked. Machine identifiers are kept
    whole (see ``_HEX_ID``); the rest is masked piece by piece between them."""
    if not text:
        return text
    pieces, start = [], 0
    for m in _HEX_ID.finditer(text):
        pieces.append(_mask_piece(text[start : m.start()]))
        pieces.append(m.group(0))
        start = m.end()
    if not pieces:
        return _mask_piece(text)
    pieces.append(_mask_piece(text[start:]))
    return "".join(pieces)


def _mask_piece(text: str) -> str:
    """Order matters: the longest, checksum-validated numbers first, so a phone pattern never eats
    part of an id or card."""
    if not text:
        return text
    text = _EMAIL.sub(_mask_email, text)
    text = _CN_ID.sub(_mask_id, text)
    text = _CN_ID15.sub(_mask_id15, text)
    text = _CARD.sub(_mask_card, text)
    text = _CN_MOBILE.sub(_mask_cn_mobile, text)
    text = _INTL_PHONE.sub(_mask_phone, text)
    text = _CN_LANDLINE.sub(_mask_landline, text)
    return text
