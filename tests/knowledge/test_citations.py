"""Citations: an answer lists the sources it cites under it, and each platform renders that list
in its own dialect — a link where it has links, the document and section where it has none."""

from __future__ import annotations

import pytest

from apps.channels.platforms.registry import get_adapter
from apps.knowledge.prompt import cited_numbers, sources_message, with_sources
from apps.knowledge.retrieval import Hit

PAGE = Hit(1, 1, 1, title="Shipping FAQ", section="International shipping", text="We ship to 40 countries.",
           url="https://shop.example/faq?lang=en")  # fmt: skip
HANDBOOK = Hit(2, 2, 1, title="Staff handbook", section="Parking", text="Park free for two hours.", page=3)
MD_LINK = "[Shipping FAQ — International shipping](https://shop.example/faq?lang=en)"
NOTE = "Staff handbook — Parking (p. 3)"
ANSWER = "We ship to 40 countries [1], and you can park for two hours [2]."


def rendered(platform: str, markdown: str) -> str:
    out = get_adapter(platform).render(markdown)
    return str(out)


def test_the_footer_lists_only_the_sources_the_answer_cites():
    text = with_sources("We ship to 40 countries [1].", [PAGE, HANDBOOK], "en")
    assert text.endswith(
        "**Sources**\n\n- \\[1\\] [Shipping FAQ — International shipping](https://shop.example/faq?lang=en)"
    )
    assert "Staff handbook" not in text
    assert with_sources("No citation here.", [PAGE], "en") == "No citation here."
    assert cited_numbers("see [2] and [9] and [1] [2]", 2) == [2, 1]
    assert "**来源**" in with_sources("我们寄往40个国家[1]。", [PAGE], "zh-Hans")


@pytest.mark.parametrize(
    ("platform", "link", "footnote"),
    [
        ("feishu", MD_LINK, NOTE),
        ("dingtalk", MD_LINK, NOTE),
        ("wecom", MD_LINK, NOTE),
        ("slack", "<https://shop.example/faq?lang=en|Shipping FAQ — International shipping>", NOTE),
        ("telegram", '<a href="https://shop.example/faq?lang=en">Shipping FAQ — International shipping</a>', NOTE),
        ("web", MD_LINK, NOTE),
        # QQ sends no links a bot did not register with the platform: the source is named, as a footnote.
        ("qq", "[1] Shipping FAQ — International shipping", "[2] Staff handbook — Parking (p. 3)"),
    ],
)
def test_each_platform_renders_the_sources_in_its_dialect(platform, link, footnote):
    out = rendered(platform, with_sources(ANSWER, [PAGE, HANDBOOK], "en"))
    assert link.replace("&", "&amp;") in out or link in out
    assert footnote in out
    assert "40 countries [1]" in out


def test_the_sources_message_numbers_passages_and_speaks_the_users_language():
    en = sources_message([PAGE, HANDBOOK], "en")
    assert "[1] Shipping FAQ — International shipping\nWe ship to 40 countries." in en
    assert "[2] Staff handbook — Parking (p. 3)\nPark free for two hours." in en
    assert "cite it as [1], [2]" in en
    assert sources_message([PAGE], "zh").startswith("请根据下面编号的资料回答")
