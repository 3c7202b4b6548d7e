# SPDX-License-Identifier: Apache-2.0
"""mitmproxy addon for the proxy benchmark: connects to 127.0.0.1 for one host name.

mitmdump -s mitm_resolve.py --set bench_resolve=origin.test  sends requests and CONNECTs for
origin.test:PORT to 127.0.0.1:PORT (what landjail-proxy's --resolve and squid's hosts_file
do), so no DNS is involved. The Host header is kept; the TLS SNI and the name verified stay
origin.test, because mitmproxy takes them from the client's ClientHello.

The address is rewritten on the request, not in server_connect: mitmproxy reuses a server
connection only for the same address, and rewriting it in server_connect made every
keep-alive request open a new one (and stalled the client connection after five requests).
"""

from mitmproxy import ctx


class Resolve:
    def load(self, loader):
        loader.add_option("bench_resolve", str, "", "host name to connect to at 127.0.0.1")

    def _rewrite(self, flow):
        if ctx.options.bench_resolve and flow.request.host == ctx.options.bench_resolve:
            host_header = flow.request.host_header
            flow.request.host = "127.0.0.1"
            if host_header is not None:
                flow.request.host_header = host_header

    def http_connect(self, flow):
        self._rewrite(flow)

    def requestheaders(self, flow):
        self._rewrite(flow)


addons = [Resolve()]
