// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for the proxy's request head handling (`make fuzz`): the bytes a client
// sends go through the same code the session runs on them — Beast's request parser with the
// session's header limit, framing_problem(), request_from_head() (on the listener, in a plain
// tunnel or in an intercepted one: the first input byte chooses), the policy decision, and
// rewrite_for_origin(). Besides "no crash, no sanitizer report", it checks what the proxy's
// security rests on, on the head it would forward:
//  - it parses again, with the framing the client's head had (no body is ever sent unframed,
//    so no request can be smuggled in one), and framing_problem() finds nothing wrong in it;
//  - no Connection token in it names a framing field, and its Host is the decided host;
//  - its target is exactly the path that was decided (plus the query);
//  - an ambiguous path is refused whenever rules constrain paths.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "policy/engine.hpp"
#include "policy/rule.hpp"
#include "policy/text.hpp"
#include "proxy/session/http_fields.hpp"
#include "proxy/session/request_head.hpp"

namespace {

using namespace lj;
using namespace lj::proxy;

constexpr std::size_t kHeaderLimit = 64 * 1024;  // the session's

[[noreturn]] void violated(const char* what, std::string_view input, const std::string& out) {
    std::fprintf(stderr, "invariant violated: %s\ninput: %.*s\nforwarded: %s\n", what,
                 static_cast<int>(input.size()), input.data(), out.c_str());
    std::abort();
}

const policy::Engine& engine() {
    static const policy::Engine e = [] {
        std::vector<policy::Rule> allow, deny;
        for (const char* t : {"domain=origin.test path=/public/*", "domain=*.test method=GET",
                              "domain=ws.test upgrade=websocket"}) {
            allow.push_back(*policy::parse_rule(t, "fuzz"));
        }
        deny.push_back(*policy::parse_rule("domain=origin.test path=/public/secret/*", "fuzz"));
        return policy::Engine(std::move(allow), std::move(deny));
    }();
    return e;
}

/// Parses a head with the session's settings; null when the bytes hold no complete head.
template <class Parser>
bool parse_head(Parser& parser, std::string_view bytes) {
    parser.header_limit(kHeaderLimit);
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    error_code ec;
    while (!bytes.empty() && !parser.is_header_done()) {
        const std::size_t used = parser.put(asio::buffer(bytes.data(), bytes.size()), ec);
        if (ec && ec != http::error::need_more) {
            return false;
        }
        if (used == 0) {
            break;
        }
        bytes.remove_prefix(used);
    }
    return parser.is_header_done();
}

bool names_framing_field(const http::fields& f) {
    for (auto it = f.find(http::field::connection);
         it != f.end() && it->name() == http::field::connection; ++it) {
        for (std::string_view token : policy::split(it->value(), ',')) {
            if (is_framing_field(policy::trim(token))) {
                return true;
            }
        }
    }
    return false;
}

void check_forwarded(const http::request_header<>& fwd, const policy::Request& preq,
                     const Framing& framing, std::string_view input) {
    std::ostringstream os;
    os << fwd;
    const std::string out = os.str();
    http::request_parser<http::buffer_body> again;
    if (!parse_head(again, out)) {
        violated("the forwarded head does not parse", input, out);
    }
    const Framing f2 = framing_of(again);
    if (f2.body != framing.body ||
        (framing.body && f2.chunked != (framing.chunked || !framing.content_length)) ||
        (framing.body && !framing.chunked && framing.content_length != f2.content_length)) {
        violated("the forwarded head frames the body differently", input, out);
    }
    if (!framing_problem(again.get()).empty() || names_framing_field(again.get())) {
        violated("the forwarded head has an ambiguous framing", input, out);
    }
    const std::string target = preq.path + (preq.has_query ? "?" + preq.query : std::string());
    if (again.get().target() != target) {
        violated("the forwarded target is not the decided path", input, out);
    }
    auto hp =
        policy::parse_host_port(again.get()[http::field::host], policy::default_port(preq.scheme));
    if (!hp || hp->host != preq.host || hp->port != preq.port) {
        violated("the forwarded Host is not the decided host", input, out);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) {
        return 0;
    }
    const std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
    http::request_parser<http::buffer_body> parser;
    if (!parse_head(parser, input)) {
        return 0;
    }
    http::request_header<>& req = parser.get();
    if (!framing_problem(req).empty()) {
        return 0;  // refused with 400
    }
    const auto host = *policy::canonical_host("origin.test");
    const TunnelOrigin tunnels[] = {
        {"http", host, 80, false}, {"https", host, 443, false}, {"https", host, 443, true}};
    const TunnelOrigin* origin = data[0] % 4 == 0 ? nullptr : &tunnels[data[0] % 4 - 1];
    if (req.method() == http::verb::connect) {
        return 0;  // handle_connect: only the target is parsed (parse_host_port, fuzzed below)
    }
    int status = 0;
    auto preq = request_from_head(req, origin, status);
    if (!preq) {
        if (status != 400 && status != 421) {
            violated("a refused head has a status other than 400/421", input, "");
        }
        return 0;
    }
    const policy::Decision d = engine().evaluate(*preq);
    if (!preq->ambiguity.empty() && d.reason != policy::Reason::AmbiguousPath) {
        violated("an ambiguous path was decided", input, "");
    }
    const Framing framing = framing_of(parser);
    rewrite_for_origin(req, *preq, framing);
    check_forwarded(req, *preq, framing, input);
    return 0;
}
