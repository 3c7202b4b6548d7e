// SPDX-License-Identifier: Apache-2.0
// The shared option group: both programs' tables hold every shared row, and what landjail
// forwards (forward_shared) parses back in landjail-proxy into the same values, row by row.
#include <string>
#include <vector>

#include "landjail/cli.hpp"
#include "proxy/base/options.hpp"
#include "proxy/server/cli.hpp"
#include "tests/unit/lj_test.hpp"

using lj::proxy::forward_shared;
using lj::proxy::shared_rows;
using lj::proxy::SharedOptions;

namespace {

template <class Rows>
bool has_row(const Rows& rows, const char* name) {
    for (const auto& r : rows) {
        if (std::string(r.spec.long_name) == name) {
            return true;
        }
    }
    return false;
}

/// A value the row accepts (numbers for --max-connections).
std::string sample(const lj::proxy::SharedRow& r, int i) {
    if (std::string(r.spec.long_name) == "max-connections") {
        return std::to_string(10 + i);
    }
    if (!r.spec.arg) {
        return "true";  // a flag's setter receives true or false
    }
    return std::string(r.spec.long_name) + "-value-" + std::to_string(i);
}

}  // namespace

Test(options, both_tables_hold_every_shared_row) {
    for (const auto& r : shared_rows()) {
        cr_expect(has_row(lj::jail::options(), r.spec.long_name), "landjail lacks --%s",
                  r.spec.long_name);
        cr_expect(has_row(lj::proxy::proxy_options(), r.spec.long_name),
                  "landjail-proxy lacks --%s", r.spec.long_name);
    }
}

Test(options, forwarded_rows_parse_back_to_the_same_values) {
    SharedOptions given;
    for (const auto& r : shared_rows()) {
        const int times = r.spec.repeatable ? 2 : 1;
        for (int i = 0; i < times; ++i) {
            cr_assert(r.set(given, sample(r, i)).ok(), "--%s", r.spec.long_name);
        }
    }
    std::vector<std::string> args = {"landjail-proxy"};
    const std::vector<std::string> forwarded = forward_shared(given);
    args.insert(args.end(), forwarded.begin(), forwarded.end());
    std::vector<char*> argv;
    for (std::string& a : args) {
        argv.push_back(a.data());
    }
    auto parsed = lj::proxy::parse_proxy_cli(static_cast<int>(argv.size()), argv.data());
    cr_assert(parsed.ok(), "%s", parsed.ok() ? "" : parsed.error().message.c_str());
    for (const auto& r : shared_rows()) {
        cr_expect(r.values(given) == r.values(*parsed), "--%s is not forwarded as given",
                  r.spec.long_name);
        cr_expect(!r.values(given).empty(), "--%s was not set by the test", r.spec.long_name);
    }
}

Test(options, unset_rows_forward_nothing) {
    cr_expect(forward_shared(SharedOptions{}).empty());
}

// A flag set to false is forwarded as such (it overrides the proxy's environment and file).
Test(options, false_flags_forward_as_false) {
    SharedOptions o;
    o.flags.disable_audit_logs = false;
    const std::vector<std::string> args = forward_shared(o);
    cr_expect(args == std::vector<std::string>{"--disable-audit-logs=false"});
}
