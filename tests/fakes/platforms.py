"""What every platform's fake shares: the payload samples kept beside each adapter, and Django
test-client headers. Each platform's own fake API is ``tests/platforms/<name>/fake.py``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PLATFORMS_DIR = Path(__file__).resolve().parents[2] / "apps" / "channels" / "platforms"


def sample(platform: str, name: str) -> str:
    """The text of a payload sample kept beside the platform's adapter."""
    return (PLATFORMS_DIR / platform / "samples" / name).read_text(encoding="utf-8")


def sample_json(platform: str, name: str) -> dict:
    return json.loads(sample(platform, name))


def as_meta(headers: dict[str, str]) -> dict[str, Any]:
    """Headers as Django test-client keyword arguments."""
    out: dict[str, Any] = {}
    for k, v in headers.items():
        if k.lower() == "content-type":
            out["content_type"] = v
        else:
            out["HTTP_" + k.upper().replace("-", "_")] = v
    return out
