// SPDX-License-Identifier: Apache-2.0
#include "proxy/http_rules.hpp"

#include <vector>

#include "policy/text.hpp"

namespace lj::proxy {

bool iequals(std::string_view a, std::string_view b) {
    return beast::iequals(a, b);
}

void strip_hop_by_hop(http::fields& fields, bool keep_upgrade) {
    std::vector<std::string> named;
    for (auto it = fields.find(http::field::connection);
         it != fields.end() && it->name() == http::field::connection; ++it) {
        for (std::string_view token : policy::split(it->value(), ',')) {
            token = policy::trim(token);
            if (!token.empty() && !(keep_upgrade && iequals(token, "upgrade"))) {
                named.emplace_back(token);
            }
        }
    }
    for (const std::string& name : named) {
        fields.erase(name);
    }
    for (auto f :
         {http::field::connection, http::field::keep_alive, http::field::proxy_authorization,
          http::field::proxy_authenticate, http::field::te, http::field::trailer}) {
        fields.erase(f);
    }
    fields.erase("Proxy-Connection");
    if (!keep_upgrade) {
        fields.erase(http::field::upgrade);
    }
}

bool is_websocket_upgrade(const http::fields& req) {
    if (!iequals(policy::trim(req[http::field::upgrade]), "websocket")) {
        return false;
    }
    for (std::string_view token : policy::split(req[http::field::connection], ',')) {
        if (iequals(policy::trim(token), "upgrade")) {
            return true;
        }
    }
    return false;
}

std::string framing_problem(const http::fields& req) {
    const auto count = [&](http::field f) {
        std::size_t n = 0;
        for (auto it = req.find(f); it != req.end() && it->name() == f; ++it) {
            ++n;
        }
        return n;
    };
    if (count(http::field::content_length) > 1) {
        return "more than one Content-Length header";
    }
    if (count(http::field::transfer_encoding) > 1) {
        return "more than one Transfer-Encoding header";
    }
    if (req.count(http::field::transfer_encoding) && req.count(http::field::content_length)) {
        return "both Content-Length and Transfer-Encoding";
    }
    if (auto te = req.find(http::field::transfer_encoding);
        te != req.end() && !iequals(policy::trim(te->value()), "chunked")) {
        return "Transfer-Encoding other than chunked";
    }
    if (count(http::field::host) > 1) {
        return "more than one Host header";
    }
    return {};
}

}  // namespace lj::proxy
