"""PII masking: phone numbers (China and international), e-mail addresses, Chinese resident ID
numbers (checksum-validated) and bank card numbers (Luhn-validated).

``mask_text`` is applied to every log line, and to text sent to a model when a bot's PII policy asks.
Validation (checksum / Luhn) keeps ordinary numbers such as order ids from being masked.
"""

from __future__ import annotations

import re

_EMAIL = re.compile(r"(?<![\w.+-])([\w.+-]{1,64})@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")
# 18-digit resident id: 6 region + 8 birth date + 3 sequence + check (digit or X).
_CN_ID = re.compile(
    r"(?<![0-9A-Za-z])([1-9]\d{5}(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[0-9Xx])(?![0-9A-Za-z])"
)
# 13-19 digit card numbers, optionally grouped by spaces or dashes.
_CARD = re.compile(r"(?<![\d])(\d(?:[ -]?\d){12,18})(?![\d])")
# Mainland mobile: 1[3-9]x, 11 digits, optional +86 / 0086.
_CN_MOBILE = re.compile(r"(?<![\d])(?:(?:\+|00)86[ -]?)?(1[3-9]\d[ -]?\d{4}[ -]?\d{4})(?![\d])")
# Landline: 0 + area code (2-3 digits) + 7-8 digit number, with - or space.
_CN_LANDLINE = re.compile(r"(?<![\d])(0\d{2,3}[- ]\d{7,8})(?![\d])")
# International: +CC then 6-14 more digits with optional separators.
_INTL_PHONE = re.compile(r"(?<![\w+])(\+[1-9]\d{0,2}(?:[ .-]?\(?\d{1,4}\)?){2,5}\d)(?![\d])")

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def cn_id_valid(number: str) -> bool:
    if len(number) != 18 or not number[:17].isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(number[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == number[17].upper()


def luhn_valid(digits: str) -> bool:
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


def _mask_email(m: re.Match) -> str:
    local = m.group(1)
    return f"{local[0]}***@{m.group(2)}"


def _mask_id(m: re.Match) -> str:
    value = m.group(1)
    return value[:3] + "*" * 11 + value[-4:] if cn_id_valid(value) else value


def _mask_card(m: re.Match) -> str:
    value = m.group(1)
    digits = re.sub(r"[ -]", "", value)
    if luhn_valid(digits):
        return "*" * (len(digits) - 4) + digits[-4:]
    return value


def _mask_phone(m: re.Match) -> str:
    value = m.group(0)
    digits = [i for i, ch in enumerate(value) if ch.isdigit()]
    if len(digits) < 7:
        return value
    keep_head, keep_tail = (3, 2) if len(digits) >= 10 else (2, 2)
    masked = list(value)
    for i in digits[keep_head : len(digits) - keep_tail]:
        masked[i] = "*"
    return "".join(masked)


def mask_text(text: str) -> str:
    """Return ``text`` with every recognised piece of PII masked. Order matters: the longest,
    checksum-validated numbers first, so a phone pattern never eats part of an id or card."""
    if not text:
        return text
    text = _EMAIL.sub(_mask_email, text)
    text = _CN_ID.sub(_mask_id, text)
    text = _CARD.sub(_mask_card, text)
    text = _CN_MOBILE.sub(_mask_phone, text)
    text = _INTL_PHONE.sub(_mask_phone, text)
    text = _CN_LANDLINE.sub(_mask_phone, text)
    return text
