# SPDX-License-Identifier: Apache-2.0
"""landjail --max-connections reaches the proxy it starts (issue 13, item 16), as root and
as uid 65534: with --max-connections 1, a program in the jail holds one connection to the
proxy open and its second connection gets the proxy's 503 naming the limit."""

from __future__ import annotations

import os
import sys

import pytest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from e2e_support_env import PYTHON, USERS, landjail_path, require_binary  # noqa: E402
from e2e_support_origins import origin_world, write_scripts  # noqa: E402
from e2e_support_jail import Jail  # noqa: E402

# Connects twice to the proxy named by HTTP_PROXY: the first connection makes a request and
# stays open (keep-alive), the second prints the first line and body of what it gets.
TWO_CONNECTIONS = r'''
import os, socket, urllib.parse
u = urllib.parse.urlsplit(os.environ["HTTP_PROXY"])
req = b"GET http://origin.test/ HTTP/1.1\r\nHost: origin.test\r\n\r\n"
first = socket.create_connection((u.hostname, u.port), timeout=20)
first.sendall(req)
print("first:", first.recv(65536).split(b"\r\n", 1)[0].decode())
second = socket.create_connection((u.hostname, u.port), timeout=20)
second.sendall(req)
data = b""
while True:
    chunk = second.recv(65536)
    if not chunk:
        break
    data += chunk
head, _, body = data.partition(b"\r\n\r\n")
print("second:", head.split(b"\r\n", 1)[0].decode(), "|", body.decode().strip())
'''


@pytest.fixture(scope="module")
def world():
    with origin_world("lj-e2e-limits.") as (shared, pki, origins):
        scripts = write_scripts(shared.subdir("scripts"), {"two.py": TWO_CONNECTIONS})
        jail = Jail(require_binary(landjail_path(), "landjail"), shared, pki, origins)
        yield jail, scripts


@pytest.mark.parametrize("user", USERS)
def test_max_connections_is_forwarded_to_the_proxy(world, user):
    jail, scripts = world
    r = jail.run([PYTHON, str(scripts["two.py"])], user=user,
                 args=["--max-connections", "1"])
    assert r.rc == 0, r
    assert "first: HTTP/1.1 200 OK" in r.stdout, r
    assert ("second: HTTP/1.1 503 Service Unavailable | "
            "landjail: too many connections (max_connections 1)") in r.stdout, r
