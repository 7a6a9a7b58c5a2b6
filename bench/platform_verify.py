"""What verifying and parsing one callback costs on the webhook path (Feishu encrypted + signed,
WeCom encrypted XML, DingTalk HMAC), without the database: the adapters' own CPU time per request.

    .venv/bin/python bench/platform_verify.py [--n 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.test import RequestFactory  # noqa: E402

from apps.channels.platforms.base import RawRequest  # noqa: E402
from apps.channels.platforms.registry import get_adapter  # noqa: E402
from tests.fakes.platforms import as_meta, sample, sample_json  # noqa: E402
from tests.platforms.conftest import DINGTALK_CREDENTIALS, FEISHU_CREDENTIALS, WECOM_CREDENTIALS  # noqa: E402
from tests.platforms.dingtalk.fake import dingtalk_headers  # noqa: E402
from tests.platforms.feishu.fake import feishu_event  # noqa: E402
from tests.platforms.wecom.fake import wecom_callback  # noqa: E402


def requests(platform: str, n: int):
    rf = RequestFactory()
    out = []
    for i in range(n):
        if platform == "feishu":
            payload = sample_json("feishu", "im.message.receive_v1.p2p_text.json")
            payload["header"]["event_id"] = f"ev-{i}"
            body, headers = feishu_event(payload, encrypt_key=FEISHU_CREDENTIALS["encrypt_key"])
            out.append(RawRequest.from_http(rf.post("/webhooks/feishu/x/", data=body, **as_meta(headers))))
        elif platform == "wecom":
            c = WECOM_CREDENTIALS
            xml = sample("wecom", "text.xml").replace("1456453720", str(i))
            query, body = wecom_callback(
                xml, token=c["token"], encoding_aes_key=c["encoding_aes_key"], corp_id=c["corp_id"]
            )
            out.append(
                RawRequest.from_http(
                    rf.post(f"/webhooks/wecom/x/?{urlencode(query)}", data=body, content_type="text/xml")
                )
            )
        else:
            payload = sample_json("dingtalk", "text_single.json")
            payload["msgId"] = f"msg-{i}"
            headers = dingtalk_headers(DINGTALK_CREDENTIALS["client_secret"], timestamp_ms=int(time.time() * 1000) + i)
            out.append(
                RawRequest.from_http(
                    rf.post("/webhooks/dingtalk/x/", data=json.dumps(payload).encode(), **as_meta(headers))
                )
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    args = parser.parse_args()
    creds = {"feishu": FEISHU_CREDENTIALS, "wecom": WECOM_CREDENTIALS, "dingtalk": DINGTALK_CREDENTIALS}
    print(f"{'platform':10} {'requests':>8} {'median µs':>10} {'p99 µs':>8} {'per core/s':>11}")
    for platform in ("feishu", "wecom", "dingtalk"):
        adapter = get_adapter(platform)
        channel = SimpleNamespace(pk=1, credentials=dict(creds[platform]), api_base="")
        reqs = requests(platform, args.n)
        times = []
        for req in reqs:
            t0 = time.perf_counter()
            if adapter.handshake(req, channel) is None:
                adapter.verify(req, channel)
                assert len(adapter.parse(req, channel)) == 1
            times.append((time.perf_counter() - t0) * 1e6)
        times.sort()
        med, p99 = statistics.median(times), times[int(len(times) * 0.99) - 1]
        print(f"{platform:10} {len(times):8d} {med:10.0f} {p99:8.0f} {1e6 / statistics.mean(times):11.0f}")


if __name__ == "__main__":
    main()
