// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for the policy library (`make fuzz`). Besides "no crash, no sanitizer
// report", it checks the invariants the proxy relies on:
//  - normalize_path is idempotent and its output has no "." or ".." segment;
//  - canonical_host is idempotent;
//  - the indexed Engine decides exactly like a linear scan of the same rules, and refuses
//    an ambiguous path exactly when some rule constrains paths;
//  - parse_config never throws and reports errors with a location.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "policy/config.hpp"
#include "policy/engine.hpp"
#include "policy/request.hpp"
#include "policy/rule.hpp"

namespace {

using namespace lj::policy;

[[noreturn]] void violated(const char* what, std::string_view input) {
    std::fprintf(stderr, "invariant violated: %s\ninput: %.*s\n", what,
                 static_cast<int>(input.size()), input.data());
    std::abort();
}

void check_path(std::string_view input) {
    auto once = normalize_path(input);
    if (!once) {
        return;
    }
    auto twice = normalize_path(*once);
    if (!twice || *twice != *once) {
        violated("normalize_path is not idempotent", input);
    }
    const std::string& p = *once;
    for (std::size_t pos = 0; pos < p.size();) {
        std::size_t end = p.find('/', pos + 1);
        std::string_view seg =
            std::string_view(p).substr(pos + 1, end == std::string::npos ? end : end - pos - 1);
        if (seg == "." || seg == "..") {
            violated("normalized path keeps a dot segment", input);
        }
        if (end == std::string::npos) {
            break;
        }
        pos = end;
    }
}

void check_host(std::string_view input) {
    auto once = canonical_host(input);
    if (!once) {
        return;
    }
    auto twice = canonical_host(once->authority());
    if (!twice || !(*twice == *once)) {
        violated("canonical_host is not idempotent", input);
    }
}

// Input lines: rules until an empty line, then "METHOD URL" requests.
void check_engine(std::string_view input) {
    std::vector<Rule> rules;
    std::vector<Request> requests;
    bool in_rules = true;
    std::size_t start = 0;
    while (start <= input.size()) {
        std::size_t end = input.find('\n', start);
        std::string_view line = input.substr(
            start, end == std::string_view::npos ? std::string_view::npos : end - start);
        if (line.empty()) {
            in_rules = false;
        } else if (in_rules) {
            if (auto r = parse_rule(line)) {
                rules.push_back(std::move(*r));
            }
        } else if (std::size_t sp = line.find(' '); sp != std::string_view::npos) {
            if (auto q = parse_request(line.substr(0, sp), line.substr(sp + 1))) {
                requests.push_back(std::move(*q));
            }
        }
        if (end == std::string_view::npos) {
            break;
        }
        start = end + 1;
    }
    const std::vector<Rule> copy = rules;
    const Engine literal(std::vector<Rule>(rules), {}, true);
    const Engine engine(std::move(rules), {});
    for (const Request& req : requests) {
        const Decision d = literal.evaluate(req);
        const Rule* linear = linear_first_match(copy, RequestView::of(req));
        const std::string_view want = linear ? std::string_view(linear->text) : std::string_view();
        if (d.allowed != (linear != nullptr) || d.rule_text() != want) {
            violated("engine and linear scan disagree", input);
        }
        // The default engine refuses an ambiguous path when rules constrain paths, and
        // otherwise decides as the literal one.
        const Decision strict = engine.evaluate(req);
        const bool refuse = engine.constrains_paths() && !req.ambiguity.empty();
        const bool same = strict.allowed == d.allowed && strict.rule_text() == d.rule_text();
        if (refuse ? strict.allowed || strict.reason != Reason::AmbiguousPath : !same) {
            violated("ambiguous paths are not refused exactly when rules constrain paths", input);
        }
    }
}

void check_config(std::string_view input) {
    auto c = parse_config(input, "fuzz.yaml");
    if (!c && c.error().file != "fuzz.yaml") {
        violated("config error without its file name", input);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) {
        return 0;
    }
    const std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
    switch (data[0] % 4) {
        case 0:
            check_path(input);
            break;
        case 1:
            check_host(input);
            break;
        case 2:
            check_engine(input);
            break;
        default:
            check_config(input);
            break;
    }
    return 0;
}
