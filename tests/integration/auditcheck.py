"""Checks on landjail-proxy audit lines (DESIGN §6)."""

from __future__ import annotations

import datetime
import re
import uuid

TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")


def is_tunnel_accept(line: dict) -> bool:
    """An accepted (intercepted) CONNECT. The contract does not say whether the proxy writes a
    line for it (only refused CONNECTs and every request inside the tunnel are named), so the
    tests tolerate such a line and leave it out of their counts."""
    return line.get("http_method") == "CONNECT" and line.get("decision") == "allow"


def requests_only(lines: list[dict]) -> list[dict]:
    return [x for x in lines if not is_tunnel_accept(x)]


def denies(lines: list[dict]) -> list[dict]:
    return [x for x in lines if x.get("decision") == "deny"]


def check_line(line: dict, *, decision: str, method: str, url: str | None = None,
               url_contains: str | None = None, host: str, rule, reason: str,
               status: int | None = None):
    """Asserts the fields of one http_request line. rule: the rule text, or None for null."""
    ctx = "audit line %r" % (line,)
    for key in ("time", "session_id", "seq", "event", "decision", "http_method", "http_url",
                "host", "matched_rule", "reason"):
        assert key in line, "%s lacks %r" % (ctx, key)
    assert TIME_RE.match(line["time"]), ctx
    skew = abs((parse_time(line["time"]) - datetime.datetime.now(datetime.timezone.utc))
               .total_seconds())
    assert skew < 300, "%s: time is %.0fs off UTC now" % (ctx, skew)
    uuid.UUID(line["session_id"])
    assert isinstance(line["seq"], int) and not isinstance(line["seq"], bool), ctx
    assert line["event"] == "http_request", ctx
    assert line["decision"] == decision, ctx
    assert line["http_method"] == method, ctx
    if url is not None:
        assert line["http_url"] == url, ctx
    if url_contains is not None:
        assert url_contains in line["http_url"], ctx
    assert line["host"] == host, ctx
    assert line["matched_rule"] == rule, ctx
    assert line["reason"] == reason, ctx
    if status is not None and "status" in line and line["status"] is not None:
        assert line["status"] == status, ctx


def check_stream(lines: list[dict]):
    """One session: the same session_id, seq strictly increasing, time non-decreasing."""
    assert lines, "no audit lines"
    sids = {x["session_id"] for x in lines}
    assert len(sids) == 1, "several session ids: %r" % sids
    seqs = [x["seq"] for x in lines]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), "seq not increasing: %r" % seqs
    times = [parse_time(x["time"]) for x in lines]
    assert times == sorted(times), "time goes backwards: %r" % [x["time"] for x in lines]


def parse_time(text: str) -> datetime.datetime:
    assert TIME_RE.match(text), text
    main, _, frac = text[:-1].partition(".")
    return datetime.datetime.fromisoformat(main + "." + (frac + "000000")[:6] + "+00:00")
