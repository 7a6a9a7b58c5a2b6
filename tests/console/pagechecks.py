"""What the console walk checks on every page: nothing overflows, and in Chinese nothing in the
page's chrome still reads as its English source.

Overflow: the page itself never scrolls sideways (``documentElement.scrollWidth`` > the window's
width), and no cell of a changelist (``#result_list``, header or row) reaches past the right or left
edge of the box that clips it (its nearest scrolling ancestor) — a column a user cannot see without
finding a scroll bar counts as hidden.

Missing translation, in zh-Hans: a visible text that (a) equals the English source (msgid) of an
entry in any catalogue Parley loads (the project's ``locale/``, each app's ``locale/``, Django's
admin) whose Chinese differs from it, or (b) holds an English phrase — two or more English words
in a row — outside the names and technical terms in ``ALLOWED_WORDS``. Data the walk typed itself
(Chinese names), code and URLs (``code``, inputs) and the changelist's data rows are not chrome.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import django

ROOT = Path(__file__).resolve().parents[2]

#: Names and technical terms a Chinese page may show in Latin letters.
ALLOWED_WORDS = {
    "parley", "webhook", "url", "urls", "api", "id", "ip", "feishu", "lark", "wecom", "dingtalk", "qq", "slack",
    "telegram", "web", "appid", "appsecret", "appkey", "token", "encodingaeskey", "oauth", "botfather",
    "setwebhook", "json", "jsonl", "csv", "ms", "app", "socket", "mode", "stream", "signing", "secret", "bot",
    "user", "c2c", "p50", "p99", "http", "https", "markdown", "openai", "anthropic", "glm", "deepseek", "qwen",
    "moonshot", "ollama", "vllm", "admin", "verification", "encrypt", "key", "mention", "im", "message",
    "receive", "v1", "fake", "model", "sso", "oidc", "pii", "ai", "lines",
}  # fmt: skip

_PO_ENTRY = re.compile(r'^msgid\s+"(.*)"\s*$')


def _unquote(s: str) -> str:
    return s.encode("utf-8").decode("unicode_escape").encode("latin-1").decode("utf-8")


def _read_po(path: Path) -> dict[str, str]:
    entries: dict[str, str] = {}
    msgid = msgstr = None
    field = None
    for line in [*path.read_text(encoding="utf-8").splitlines(), ""]:
        line = line.strip()
        if line.startswith("msgid "):
            if msgid is not None and msgstr is not None:
                entries[msgid] = msgstr
            msgid, msgstr, field = _unquote(line[7:-1]), None, "id"
        elif line.startswith("msgstr "):
            msgstr, field = _unquote(line[8:-1]), "str"
        elif line.startswith('"') and field:
            if field == "id":
                msgid += _unquote(line[1:-1])
            else:
                msgstr += _unquote(line[1:-1])
        elif not line:
            field = None
    if msgid is not None and msgstr is not None:
        entries[msgid] = msgstr
    return entries


@cache
def english_sources() -> frozenset[str]:
    """English msgids with a different Chinese translation, from every zh_Hans catalogue in use."""
    django_dir = Path(django.__file__).parent
    paths = [
        *ROOT.glob("locale/zh_Hans/LC_MESSAGES/*.po"),
        *ROOT.glob("apps/*/locale/zh_Hans/LC_MESSAGES/*.po"),
        django_dir / "contrib/admin/locale/zh_Hans/LC_MESSAGES/django.po",
        django_dir / "contrib/auth/locale/zh_Hans/LC_MESSAGES/django.po",
    ]
    out = set()
    for path in paths:
        if path.exists():
            for msgid, msgstr in _read_po(path).items():
                text = " ".join(msgid.split())
                if text and msgstr and msgstr != msgid and "%" not in text and "{" not in text:
                    out.add(text)
    return frozenset(out)


_WORD = re.compile(r"[A-Za-z][A-Za-z'’]+")


def english_phrase(text: str) -> str | None:
    """The first run of two or more English words not all in ``ALLOWED_WORDS``, or None."""
    run: list[str] = []
    for token in re.split(r"(\s+)", text):
        if not token.strip():
            continue
        word = token.strip(".,:;()!?“”\"'·…/—-")
        if _WORD.fullmatch(word):
            run.append(word)
            if len(run) >= 2 and any(w.lower() not in ALLOWED_WORDS for w in run):
                return " ".join(run)
        else:
            run = []
    return None


VISIBLE_TEXTS_JS = """() => {
  // Not chrome: code and URLs, form values, chart marks, changelist rows, and what people and the
  // bot wrote (transcript bubbles' text and author), names people gave things (.parley-name).
  const skip = 'script,style,code,pre,textarea,input,select,option,svg,#result_list tbody,'
    + '.parley-url,.parley-name,.chat .text,.chat .who';
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode, el = node.parentElement, text = node.textContent.trim();
    if (!text || !el || el.closest(skip)) continue;
    const r = el.getBoundingClientRect(), cs = getComputedStyle(el);
    if (r.width === 0 || r.height === 0 || cs.visibility === 'hidden' || cs.display === 'none') continue;
    out.push(text.replace(/\\s+/g, ' '));
  }
  for (const el of document.querySelectorAll('input[type=submit],input[type=button],[placeholder]')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0) continue;
    if (el.placeholder) out.push(el.placeholder.trim());
    if (el.type === 'submit' || el.type === 'button') out.push((el.value || '').trim());
  }
  return out;
}"""

OVERFLOW_JS = """() => {
  const doc = document.documentElement;
  const out = {page: doc.scrollWidth - window.innerWidth, clipped: []};
  const table = document.querySelector('#result_list');
  if (!table) return out;
  let box = table.parentElement;
  const clips = (el) => ['auto', 'scroll', 'hidden', 'clip'].includes(getComputedStyle(el).overflowX);
  while (box && box !== document.body && !clips(box)) box = box.parentElement;
  const edge = (box || document.body).getBoundingClientRect();
  for (const cell of table.querySelectorAll('th, td')) {
    const r = cell.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    const outside = r.right > edge.right + 1 || r.left < edge.left - 1;
    if (outside) out.clipped.push(cell.innerText.trim().slice(0, 40) || cell.className);
  }
  return out;
}"""


def overflow_problems(page) -> list[str]:
    found = page.evaluate(OVERFLOW_JS)
    problems = []
    if found["page"] > 0:
        problems.append(f"page scrolls sideways by {found['page']} px")
    if found["clipped"]:
        problems.append(f"changelist cells outside their scroll box: {found['clipped'][:8]}")
    return problems


def translation_problems(page) -> list[str]:
    sources = english_sources()
    problems = []
    for text in page.evaluate(VISIBLE_TEXTS_JS):
        if text in sources:
            problems.append(f"untranslated: {text!r}")
        elif phrase := english_phrase(text):
            problems.append(f"English in the page: {phrase!r} (in {text[:80]!r})")
    return sorted(set(problems))
