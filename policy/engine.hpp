// SPDX-License-Identifier: Apache-2.0
// policy::Engine: decides a normalized request against allow and deny rules. Deterministic
// and default-deny: a request is allowed when some allow rule matches every key and no deny
// rule matches; the decision names the first matching rule in rule order, as written.
// Rules are indexed by the literal suffix of their domain so that a decision looks at the
// handful of rules that can concern the host, not all of them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "policy/request.hpp"
#include "policy/rule.hpp"

namespace lj::policy {

enum class Reason : std::uint8_t {
    AllowRule,      ///< allowed by `rule`
    DenyRule,       ///< an allow rule matched but deny rule `rule` overrides it
    NoRuleMatched,  ///< no allow rule matched (default deny)
    AmbiguousPath,  ///< rules constrain paths and this path reads differently to some origins
};
/// "allow_rule_matched", "deny_rule_matched", "no_rule_matched", "ambiguous_path" (audit
/// `reason` values).
std::string_view to_string(Reason reason);

/// The canonical request fields the engine looks at; all views must outlive the call.
struct RequestView {
    std::string_view method;  ///< upper-case
    std::string_view host;    ///< canonical (Host::text)
    HostKind host_kind = HostKind::Name;
    std::uint16_t port = 0;
    std::string_view path;       ///< normalized
    std::string_view upgrade;    ///< lower-case protocol asked for with Upgrade, "" for none
    std::string_view ambiguity;  ///< Request::ambiguity ("" when the path is unambiguous)

    static RequestView of(const Request& r) {
        return {r.method, r.host.text, r.host.kind, r.port, r.path, r.upgrade, r.ambiguity};
    }
};

struct Decision {
    bool allowed = false;
    Reason reason = Reason::NoRuleMatched;
    const Rule* rule = nullptr;  ///< the deciding rule (allow or deny), owned by the Engine

    std::string_view rule_text() const {
        return rule ? std::string_view(rule->text) : std::string_view();
    }
};

/// Thread-safety: immutable after construction; evaluate() may run concurrently.
class Engine {
  public:
    Engine() = default;  ///< no rules: denies everything
    /// `literal_paths` (config `ambiguous_paths: literal`): match ambiguous paths as written
    /// instead of refusing them.
    Engine(std::vector<Rule> allow, std::vector<Rule> deny, bool literal_paths = false);
    Engine(const Engine&) = delete;  // Decision::rule points into the engine
    Engine& operator=(const Engine&) = delete;
    Engine(Engine&&) noexcept = default;
    Engine& operator=(Engine&&) noexcept = default;

    /// Refuses (AmbiguousPath) a request whose path is ambiguous when any rule has path= and
    /// paths are not literal; otherwise the first matching allow rule unless a deny rule
    /// matches.
    Decision evaluate(const RequestView& request) const;
    Decision evaluate(const Request& request) const { return evaluate(RequestView::of(request)); }

    /// For CONNECT: false when no request to host:port could be allowed, whatever its method
    /// and path (no allow rule matches host and port, or a deny rule without method and path
    /// restrictions covers them).
    bool may_allow(std::string_view host, HostKind kind, std::uint16_t port) const {
        return decide_connect(host, kind, port).allowed;
    }
    /// The same decision with its attribution: the unrestricted deny rule that refuses the
    /// host (DenyRule), else the first allow rule that matches host and port (AllowRule),
    /// else NoRuleMatched.
    Decision decide_connect(std::string_view host, HostKind kind, std::uint16_t port) const;

    const std::vector<Rule>& allow_rules() const { return allow_.rules; }
    const std::vector<Rule>& deny_rules() const { return deny_.rules; }
    /// Whether some allow or deny rule has path= (ambiguous paths are then refused).
    bool constrains_paths() const { return constrains_paths_; }
    bool literal_paths() const { return literal_paths_; }

  private:
    // Not noexcept on purpose: libstdc++ then caches each node's hash code, so a lookup does
    // not re-hash every key along a bucket chain (measured: 460 -> 374 instructions per
    // decision with 5000 rules).
    struct KeyHash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const {
            return std::hash<std::string_view>{}(s);
        }
    };
    struct KeyEq {
        using is_transparent = void;
        bool operator()(std::string_view a, std::string_view b) const noexcept { return a == b; }
    };
    /// Rules plus an index: rule numbers (ascending) by domain suffix key, and the rules that
    /// have no key (no domain, bare `*`, or a wildcard last label), which every host must try.
    struct Set {
        std::vector<Rule> rules;
        std::unordered_map<std::string, std::vector<std::uint32_t>, KeyHash, KeyEq> by_key;
        std::vector<std::uint32_t> unkeyed;
        std::size_t max_key_labels = 0;

        void build();
        /// Index of the first rule for which `pred(rule)` holds among those whose host
        /// pattern matches; rules.size() when none.
        template <class Pred>
        std::uint32_t first_match(std::string_view host, HostKind kind, Pred&& pred) const;
    };
    Set allow_;
    Set deny_;
    bool constrains_paths_ = false;
    bool literal_paths_ = false;
};

/// The first rule matching the request in a plain scan of `rules` (no index): the reference
/// the engine is tested and benchmarked against.
const Rule* linear_first_match(const std::vector<Rule>& rules, const RequestView& request);

}  // namespace lj::policy
