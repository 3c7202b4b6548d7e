// SPDX-License-Identifier: Apache-2.0
#include "policy/engine.hpp"

#include <algorithm>

namespace lj::policy {

std::string_view to_string(Reason reason) {
    switch (reason) {
        case Reason::AllowRule:
            return "allow_rule_matched";
        case Reason::DenyRule:
            return "deny_rule_matched";
        case Reason::NoRuleMatched:
            return "no_rule_matched";
        case Reason::AmbiguousPath:
            return "ambiguous_path";
    }
    return "no_rule_matched";
}

void Engine::Set::build() {
    by_key.clear();
    unkeyed.clear();
    max_key_labels = 0;
    for (std::uint32_t i = 0; i < rules.size(); ++i) {
        const Rule& rule = rules[i];
        std::string key = rule.host ? rule.host->index_key() : std::string();
        if (key.empty()) {
            unkeyed.push_back(i);
            continue;
        }
        if (rule.host->kind == HostPattern::Kind::Name) {
            const auto labels =
                static_cast<std::size_t>(std::count(key.begin(), key.end(), '.')) + 1;
            max_key_labels = std::max(max_key_labels, labels);
        }
        by_key[std::move(key)].push_back(i);  // ascending: i grows
    }
}

template <class Pred>
std::uint32_t Engine::Set::first_match(std::string_view host, HostKind kind, Pred&& pred) const {
    auto best = static_cast<std::uint32_t>(rules.size());
    auto scan = [&](const std::vector<std::uint32_t>& candidates) {
        for (std::uint32_t i : candidates) {
            if (i >= best) {
                return;  // ascending: nothing earlier left in this bucket
            }
            const Rule& rule = rules[i];
            if (rule.matches_host(host, kind) && pred(rule)) {
                best = i;
                return;
            }
        }
    };
    scan(unkeyed);
    if (by_key.empty()) {
        return best;
    }
    if (kind != HostKind::Name) {
        if (auto it = by_key.find(host); it != by_key.end()) {
            scan(it->second);
        }
        return best;
    }
    // Every suffix of the host at a label boundary, shortest first, up to the longest key.
    std::size_t labels = 0;
    std::size_t start = host.size();
    while (start != std::string_view::npos && labels < max_key_labels) {
        const std::size_t dot = start == 0 ? std::string_view::npos : host.rfind('.', start - 1);
        const std::size_t from = dot == std::string_view::npos ? 0 : dot + 1;
        if (auto it = by_key.find(host.substr(from)); it != by_key.end()) {
            scan(it->second);
        }
        ++labels;
        start = dot;
    }
    return best;
}

Engine::Engine(std::vector<Rule> allow, std::vector<Rule> deny, bool literal_paths)
    : literal_paths_(literal_paths) {
    allow_.rules = std::move(allow);
    deny_.rules = std::move(deny);
    allow_.build();
    deny_.build();
    const auto has_paths = [](const Rule& r) { return !r.paths.empty(); };
    constrains_paths_ = std::any_of(allow_.rules.begin(), allow_.rules.end(), has_paths) ||
                        std::any_of(deny_.rules.begin(), deny_.rules.end(), has_paths);
}

Decision Engine::evaluate(const RequestView& r) const {
    if (constrains_paths_ && !literal_paths_ && !r.ambiguity.empty()) {
        return {false, Reason::AmbiguousPath, nullptr};
    }
    auto full = [&](const Rule& rule) {
        return rule.matches_port(r.port) && rule.matches_method(r.method) &&
               rule.matches_path(r.path) && rule.matches_upgrade(r.upgrade);
    };
    const std::uint32_t a = allow_.first_match(r.host, r.host_kind, full);
    if (a == allow_.rules.size()) {
        return {false, Reason::NoRuleMatched, nullptr};
    }
    const std::uint32_t d = deny_.first_match(r.host, r.host_kind, full);
    if (d != deny_.rules.size()) {
        return {false, Reason::DenyRule, &deny_.rules[d]};
    }
    return {true, Reason::AllowRule, &allow_.rules[a]};
}

Decision Engine::decide_connect(std::string_view host, HostKind kind, std::uint16_t port) const {
    const std::uint32_t d = deny_.first_match(host, kind, [&](const Rule& rule) {
        return rule.methods.empty() && rule.paths.empty() && rule.upgrades.empty() &&
               rule.matches_port(port);
    });
    if (d != deny_.rules.size()) {
        return {false, Reason::DenyRule, &deny_.rules[d]};
    }
    const std::uint32_t a =
        allow_.first_match(host, kind, [&](const Rule& rule) { return rule.matches_port(port); });
    if (a == allow_.rules.size()) {
        return {false, Reason::NoRuleMatched, nullptr};
    }
    return {true, Reason::AllowRule, &allow_.rules[a]};
}

const Rule* linear_first_match(const std::vector<Rule>& rules, const RequestView& r) {
    for (const Rule& rule : rules) {
        if (rule.matches_host(r.host, r.host_kind) && rule.matches_port(r.port) &&
            rule.matches_method(r.method) && rule.matches_path(r.path) &&
            rule.matches_upgrade(r.upgrade)) {
            return &rule;
        }
    }
    return nullptr;
}

}  // namespace lj::policy
