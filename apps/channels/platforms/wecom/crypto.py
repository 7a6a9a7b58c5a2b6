"""WeCom callback crypto, on wechatpy's ``WeChatCrypto`` / ``PrpCrypto``.

wechatpy handles what matters here: the key is ``base64(EncodingAESKey + "=")``, the IV its first
16 bytes, the padding PKCS#7 to a multiple of 32 (pad bytes 1–32, which a 16-byte unpad rejects),
and the receiveid (CorpID) at the end of the plaintext is checked (``InvalidCorpIdException``).
Two things are done here instead: the signature is compared in constant time (wechatpy uses
``!=``), and the assorted exceptions its decoder raises on garbage are folded into ``DecryptError``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from wechatpy.enterprise.crypto import PrpCrypto, WeChatCrypto
from wechatpy.enterprise.exceptions import InvalidCorpIdException


class DecryptError(ValueError):
    """Not a ciphertext under this EncodingAESKey."""


class ReceiveIdMismatch(DecryptError):
    """Decrypted, but addressed to another receiver (CorpID / suite id)."""


def aes_key(encoding_aes_key: str) -> bytes:
    """The 32-byte AES key; raises ``DecryptError`` for a key that is not 43 base64 characters."""
    try:
        key = base64.b64decode((encoding_aes_key or "") + "=", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DecryptError("EncodingAESKey is not base64") from exc
    if len(key) != 32:
        raise DecryptError("EncodingAESKey must be 43 characters")
    return key


def signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    """``msg_signature``: hex SHA-1 of the four strings sorted and joined."""
    # SHA-1 is what WeCom signs with.
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypt])).encode()).hexdigest()  # noqa: S324


def signature_matches(given: str, token: str, timestamp: str, nonce: str, encrypt: str) -> bool:
    return hmac.compare_digest(signature(token, timestamp, nonce, encrypt).encode(), (given or "").lower().encode())


def decrypt(encrypt: str, encoding_aes_key: str, receive_id: str) -> str:
    """The message inside ``encrypt``. Raises ``ReceiveIdMismatch`` or ``DecryptError``."""
    key = aes_key(encoding_aes_key)
    try:
        return PrpCrypto(key).decrypt(encrypt, receive_id)
    except InvalidCorpIdException as exc:
        raise ReceiveIdMismatch("receiveid does not match the channel's CorpID") from exc
    except Exception as exc:  # wechatpy raises struct/binascii/unicode/value errors on garbage
        raise DecryptError(f"cannot decrypt ({type(exc).__name__})") from exc


def encrypt_message(xml: str, *, token: str, encoding_aes_key: str, receive_id: str, nonce: str, timestamp: str) -> str:
    """The encrypted, signed XML envelope WeCom would send (or expects as a passive reply)."""
    aes_key(encoding_aes_key)
    return WeChatCrypto(token, encoding_aes_key, receive_id).encrypt_message(xml, nonce, timestamp)


def encrypt(text: str, encoding_aes_key: str, receive_id: str) -> str:
    """The bare ``Encrypt`` value for ``text`` (the echostr of a URL verification, a JSON callback)."""
    return PrpCrypto(aes_key(encoding_aes_key)).encrypt(text, receive_id).decode()
