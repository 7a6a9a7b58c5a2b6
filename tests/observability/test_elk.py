"""The ELK configs keep Parley's log fields: Filebeat decodes each JSON line to top-level fields,
Logstash takes the event time from Parley's timestamp."""

from __future__ import annotations

import io
import json
import logging
import re
from pathlib import Path

import yaml

from apps.core.logging import ContextFilter, JsonFormatter, log_context

ELK = Path(__file__).resolve().parents[2] / "deploy" / "elk"


def test_filebeat_decodes_json_lines_to_top_level_fields():
    config = yaml.safe_load((ELK / "filebeat.yml").read_text())
    (inp,) = config["filebeat.inputs"]
    ndjson = next(p["ndjson"] for p in inp["parsers"] if "ndjson" in p)
    assert ndjson["target"] == "" and ndjson["overwrite_keys"] is True
    assert config["output.logstash"]["hosts"]
    dropped = next(p["drop_fields"]["fields"] for p in config["processors"] if "drop_fields" in p)
    assert not {"level", "tenant", "bot", "platform", "conversation", "trace_id", "message"} & set(dropped)


def test_logstash_uses_parleys_timestamp_and_keeps_the_fields():
    conf = (ELK / "logstash-parley.conf").read_text()
    blocks = re.sub(r"=~ /[^/]*/", "", conf)  # a regex literal may hold a brace
    assert blocks.count("{") == blocks.count("}")
    assert re.search(r'match\s*=>\s*\["timestamp",\s*"ISO8601"\]', conf)
    removed = re.findall(r"remove_field\s*=>\s*\[([^\]]*)\]", conf)
    for field in ("level", "tenant", "bot", "platform", "conversation", "trace_id", "message", "logger"):
        assert all(f'"{field}"' not in r for r in removed), field


def test_a_parley_line_has_what_the_kibana_searches_use():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    logger = logging.getLogger("apps.test.elk")
    logger.addHandler(handler)
    try:
        with log_context(tenant="acme", bot="helpdesk", platform="feishu", conversation=7, trace_id="abc"):
            logger.error("reply not delivered")
    finally:
        logger.removeHandler(handler)
    line = json.loads(stream.getvalue())
    searches = (ELK / "kibana-searches.md").read_text()
    assert 'platform:"feishu" AND level:"error"' in searches
    assert (line["platform"], line["level"]) == ("feishu", "error")
    for field in re.findall(r"`(\w+):", searches):
        assert field in line or field == "elapsed_ms", f"Kibana search uses {field!r}, which lines do not carry"
