# SPDX-License-Identifier: Apache-2.0
"""Audit helpers for the e2e tests: read an audit file's JSON lines, pick the http_request
events, find one event and check one decision's fields.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.dont_write_bytecode = True


# ---- audit ---------------------------------------------------------------------------------


def read_audit(path: Path) -> list[dict]:
    """The complete JSON lines of an audit file ([] when it does not exist)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.split("\n")[:-1] if line.strip()]


def http_events(lines: list[dict]) -> list[dict]:
    """The http_request events, without the accepted-CONNECT line the proxy may write for an
    intercepted tunnel (the contract names only refused CONNECTs and the requests inside)."""
    return [x for x in lines if x.get("event") == "http_request"
            and not (x.get("http_method") == "CONNECT" and x.get("decision") == "allow")]


def find_event(lines: list[dict], **want) -> dict:
    """The one audit line whose fields equal `want` (url_contains= matches a substring of
    http_url); fails with every line when there is not exactly one."""
    contains = want.pop("url_contains", None)
    hits = [x for x in lines if all(x.get(k) == v for k, v in want.items())
            and (contains is None or contains in str(x.get("http_url")))]
    assert len(hits) == 1, "want exactly one audit line with %r%s; lines:\n%s" % (
        want, " and http_url containing %r" % contains if contains else "",
        "\n".join(json.dumps(x) for x in lines))
    return hits[0]


def check_decision(lines: list[dict], decision: str, method: str, rule, url: str | None = None,
                   url_contains: str | None = None) -> dict:
    """Asserts one http_request line with this decision, http_method, http_url (exact, or
    containing url_contains) and matched_rule (the rule as written, or None for null)."""
    want = {"event": "http_request", "decision": decision, "http_method": method,
            "matched_rule": rule}
    if url is not None:
        want["http_url"] = url
    if url_contains is not None:
        want["url_contains"] = url_contains
    return find_event(lines, **want)
