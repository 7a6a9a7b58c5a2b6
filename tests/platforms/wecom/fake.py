"""The fake WeCom API for the tests: a real HTTP server on 127.0.0.1 (``tests.fakes.server``)
speaking the platform's wire format, request builders that sign (and encrypt) callbacks as the
platform does."""

from __future__ import annotations

import itertools
import json
import time

from apps.channels.platforms.wecom import crypto as wecom_crypto
from tests.fakes.server import FakeServer, RecordedRequest


def install_wecom(server: FakeServer, *, token: str = "wecom-access-token-0001") -> None:
    counter = itertools.count(1)

    def gettoken(req: RecordedRequest):
        return 200, {"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": 7200}

    def send(req: RecordedRequest):
        if req.query.get("access_token") != [token]:
            return 200, {"errcode": 40014, "errmsg": "invalid access_token"}
        return 200, {"errcode": 0, "errmsg": "ok", "invaliduser": "", "msgid": f"wecom-msg-{next(counter)}"}

    server.route("GET", "/cgi-bin/gettoken", gettoken)
    server.route("POST", "/cgi-bin/message/send", send)


def wecom_callback(
    plaintext: str,
    *,
    token: str,
    encoding_aes_key: str,
    corp_id: str,
    json_mode: bool = False,
    timestamp: str | None = None,
    nonce: str = "1372623149",
) -> tuple[dict[str, str], bytes]:
    """(query, body) of a WeCom callback carrying ``plaintext``, encrypted and signed."""
    ts = timestamp or str(int(time.time()))
    encrypt = wecom_crypto.encrypt(plaintext, encoding_aes_key, corp_id)
    sig = wecom_crypto.signature(token, ts, nonce, encrypt)
    if json_mode:
        body = json.dumps({"tousername": corp_id, "encrypt": encrypt, "agentid": "1000002"}).encode()
    else:
        body = (
            f"<xml><ToUserName><![CDATA[{corp_id}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt>"
            "<AgentID><![CDATA[1000002]]></AgentID></xml>"
        ).encode()
    return {"msg_signature": sig, "timestamp": ts, "nonce": nonce}, body


def xml_encrypt_value(body: str) -> str:
    """The ``<Encrypt>`` text of a WeCom callback body."""
    import xml.etree.ElementTree as ET

    return ET.fromstring(body).findtext("Encrypt") or ""
