// SPDX-License-Identifier: Apache-2.0
#include "proxy/session/http_fields.hpp"

#include <vector>

#include "policy/text.hpp"

namespace lj::proxy {

bool iequals(std::string_view a, std::string_view b) {
    return beast::iequals(a, b);
}

namespace {

/// Each token of every Connection field, trimmed, empty ones left out.
std::vector<std::string> connection_tokens(const http::fields& fields) {
    std::vector<std::string> out;
    for (auto it = fields.find(http::field::connection);
         it != fields.end() && it->name() == http::field::connection; ++it) {
        for (std::string_view token : policy::split(it->value(), ',')) {
            token = policy::trim(token);
            if (!token.empty()) {
                out.emplace_back(token);
            }
        }
    }
    return out;
}

}  // namespace

bool is_framing_field(std::string_view name) {
    return iequals(name, "content-length") || iequals(name, "transfer-encoding") ||
           iequals(name, "host");
}

template <bool isRequest, class Fields>
void frame(http::header<isRequest, Fields>& h, const Framing& f) {
    if (f.body && (f.chunked || !f.content_length)) {
        h.erase(http::field::content_length);
        h.set(http::field::transfer_encoding, "chunked");
        return;
    }
    h.erase(http::field::transfer_encoding);
    if (f.content_length) {
        h.set(http::field::content_length, std::to_string(*f.content_length));
    } else {
        h.erase(http::field::content_length);
    }
}

template void frame(http::request_header<>&, const Framing&);
template void frame(http::response_header<>&, const Framing&);

void strip_hop_by_hop(http::fields& fields, bool keep_upgrade) {
    std::vector<std::string> named;
    for (std::string& token : connection_tokens(fields)) {
        if (!(keep_upgrade && iequals(token, "upgrade")) && !is_framing_field(token)) {
            named.push_back(std::move(token));
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

std::string framing_problem(const http::request_header<>& req) {
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
    if (req.version() < 11 && req.count(http::field::transfer_encoding)) {
        return "Transfer-Encoding in an HTTP/1.0 request";
    }
    for (const std::string& token : connection_tokens(req)) {
        if (is_framing_field(token)) {
            return "the Connection header names " + token +
                   ", which says where the request ends or goes and cannot be hop-by-hop";
        }
    }
    if (req.method() == http::verb::connect &&
        (req.count(http::field::transfer_encoding) ||
         (req.count(http::field::content_length) &&
          policy::trim(req[http::field::content_length]) != "0"))) {
        return "a CONNECT request with a body";
    }
    return {};
}

}  // namespace lj::proxy
