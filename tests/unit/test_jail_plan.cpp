// SPDX-License-Identifier: Apache-2.0
// The protection plan (DESIGN §3 "Degradation"): plan_protection over every level, from the
// host's facts, --require and --allow-weak; and the --require parser. One case per line:
// facts, flags, then the expected level (0: an error) and a '|'-separated list of words one of
// which the error (or, for a plan, one of the `lost` items) must contain.
#include <cerrno>
#include <string>

#include "landjail/jail/protection.hpp"
#include "tests/unit/lj_test.hpp"

using lj::jail::HostFacts;
using lj::jail::parse_requirements;
using lj::jail::plan_protection;
using lj::jail::Requirements;
using lj::test::contains_any;
using lj::test::cr_str;
using lj::test::describe;

namespace {

struct PlanRow {
    int abi;
    int landlock_errno;
    bool notify;
    bool getfd;
    bool require_landlock;
    bool require_seccomp;
    bool allow_weak;
    int level;           ///< 0: plan_protection must fail
    const char* needle;  ///< error words, or words of `lost` (nullptr: `lost` must be empty)
    int lost;            ///< number of `lost` items for a plan
};

struct PlanCase {
    PlanRow row;
    char* needle;
};

// clang-format off
const PlanRow kPlanRows[] = {
    // 1: full. ABI >= 6, notification and pidfd_getfd; nothing lost.
    {7, 0, true, true, false, false, false, 1, nullptr, 0},
    {6, 0, true, true, false, false, false, 1, nullptr, 0},
    {7, 0, true, true, false, false, true, 1, nullptr, 0},
    {7, 0, true, true, true, true, false, 1, nullptr, 0},
    // 2: ADDFD instead of pidfd_getfd
    {7, 0, true, false, false, false, false, 2, "pidfd_getfd", 1},
    {6, 0, true, false, true, true, false, 2, "pidfd_getfd", 1},
    // 3: Landlock ABI 4-5 (network rules, no scopes): four scope items (signals by pid and
    // group, pidfd_send_signal, SIGIO owners and setpgid, abstract unix sockets)
    {5, 0, true, true, false, false, false, 3, "signal scope", 4},
    {4, 0, true, true, false, false, false, 3, "performed by the supervisor", 4},
    {4, 0, true, true, true, false, false, 3, "ABI 4", 4},
    {5, 0, true, true, false, false, false, 3, "F_SETOWN", 4},
    {5, 0, true, true, false, false, false, 3, "abstract unix", 4},
    {5, 0, true, false, false, false, false, 3, "pidfd_getfd", 5},
    {5, 0, true, false, false, false, false, 3, "pidfd_send_signal is refused", 5},
    // 4: files-only Landlock (ABI 1-3), or none at all
    {3, 0, true, true, false, false, false, 4, "network rules", 5},
    {2, 0, true, true, false, false, false, 4, "ABI 2", 5},
    {1, 0, true, true, false, false, false, 4, "setpgid", 5},
    {0, ENOSYS, true, true, false, false, false, 4, "no Landlock", 5},
    {0, EOPNOTSUPP, true, true, false, false, false, 4, "disabled", 5},
    {0, ENOSYS, true, false, false, false, false, 4, "pidfd_getfd", 6},
    // 5: no notification, Landlock network rules: only with --allow-weak
    {7, 0, false, true, false, false, false, 0, "--allow-weak", 0},
    {4, 0, false, false, false, false, false, 0, "--allow-weak", 0},
    {7, 0, false, true, false, false, true, 5, "supervisor", 1},
    {6, 0, false, false, false, false, true, 5, "any address", 1},
    {4, 0, false, true, false, false, true, 5, "scopes", 2},
    {7, 0, false, true, true, false, true, 5, "supervisor", 1},
    // 6: neither notification nor Landlock network rules: refused, --allow-weak or not
    {3, 0, false, true, false, false, false, 0, "cannot jail", 0},
    {3, 0, false, true, false, false, true, 0, "cannot jail", 0},
    {0, ENOSYS, false, false, false, false, true, 0, "cannot jail|shim alone", 0},
    {0, EOPNOTSUPP, false, false, false, false, true, 0, "disabled", 0},
    // --require landlock: network rules (ABI >= 4) or an error naming Landlock
    {3, 0, true, true, true, false, false, 0, "landlock", 0},
    {1, 0, true, true, true, false, false, 0, "ABI 1", 0},
    {0, ENOSYS, true, true, true, false, false, 0, "landlock", 0},
    {0, EOPNOTSUPP, true, true, true, true, false, 0, "landlock", 0},
    // --require seccomp: notification or an error naming it, whatever else the host has
    {7, 0, false, true, false, true, false, 0, "seccomp", 0},
    {7, 0, false, true, false, true, true, 0, "seccomp", 0},
    {7, 0, false, true, true, true, true, 0, "seccomp", 0},
};
// clang-format on

std::string joined(const std::vector<std::string>& items) {
    std::string out;
    for (const std::string& s : items) {
        out += s + "\n";
    }
    return out;
}

}  // namespace

ParameterizedTestParameters(jail_plan, levels) {
    static criterion::parameters<PlanCase> params;
    if (params.empty()) {
        for (const PlanRow& r : kPlanRows) {
            params.push_back(PlanCase{r, cr_str(r.needle)});
        }
    }
    return params;
}

ParameterizedTest(PlanCase* c, jail_plan, levels) {
    const PlanRow& r = c->row;
    HostFacts facts;
    facts.kernel = "6.18.0-test";
    facts.landlock_abi = r.abi;
    facts.landlock_errno = r.landlock_errno;
    facts.notify = r.notify;
    facts.notify_errno = r.notify ? 0 : ENOSYS;
    facts.pidfd_getfd = r.getfd;
    facts.pidfd_getfd_errno = r.getfd ? 0 : EPERM;
    const Requirements req{r.require_landlock, r.require_seccomp};
    char tag[160];
    std::snprintf(tag, sizeof tag, "[abi %d errno %d notify %d getfd %d require %d%d weak %d]",
                  r.abi, r.landlock_errno, r.notify, r.getfd, r.require_landlock, r.require_seccomp,
                  r.allow_weak);

    const auto plan = plan_protection(facts, req, r.allow_weak);
    if (r.level == 0) {
        cr_assert(!plan.ok(), "%s: expected an error, got level %d", tag,
                  plan.ok() ? plan->level : 0);
        const std::string what = plan.error().what();
        cr_expect(contains_any(what, c->needle), "%s: error '%s' should mention %s", tag,
                  what.c_str(), c->needle);
        return;
    }
    cr_assert(plan.ok(), "%s: %s", tag, describe(plan).c_str());
    cr_expect_eq(plan->level, r.level, "%s: level %d, expected %d", tag, plan->level, r.level);
    cr_expect_eq(plan->landlock_abi, r.abi, "%s: landlock_abi %d", tag, plan->landlock_abi);
    cr_expect(!plan->summary.empty(), "%s: empty summary", tag);
    const bool weak = r.level == 5;
    cr_expect_eq(plan->weak, weak, "%s: weak %d", tag, plan->weak);
    cr_expect_eq(plan->supervise, !weak, "%s: supervise %d", tag, plan->supervise);
    cr_expect_eq(plan->getfd, !weak && r.getfd, "%s: getfd %d", tag, plan->getfd);
    if (r.level == 1) {
        cr_expect(plan->summary.rfind("full", 0) == 0, "%s: summary '%s'", tag,
                  plan->summary.c_str());
    } else {
        cr_expect(contains_any(plan->summary, weak ? "weak" : "degraded"), "%s: summary '%s'", tag,
                  plan->summary.c_str());
    }
    const std::string lost = joined(plan->lost);
    cr_expect_eq(plan->lost.size(), static_cast<std::size_t>(r.lost), "%s: %zu lost items:\n%s",
                 tag, plan->lost.size(), lost.c_str());
    if (c->needle != nullptr) {
        cr_expect(contains_any(lost, c->needle), "%s: lost should mention %s:\n%s", tag, c->needle,
                  lost.c_str());
    }
}

namespace {

struct RequireRow {
    const char* text;
    bool ok;
    bool landlock;
    bool seccomp;
    const char* needle;  ///< for errors: words the message must contain
};

struct RequireCase {
    char* text;
    bool ok;
    bool landlock;
    bool seccomp;
    char* needle;
};

const RequireRow kRequireRows[] = {
    {"landlock", true, true, false, nullptr},
    {"seccomp", true, false, true, nullptr},
    {"landlock,seccomp", true, true, true, nullptr},
    {"seccomp,landlock", true, true, true, nullptr},
    {" landlock , seccomp ", true, true, true, nullptr},
    {"landlock,landlock", true, true, false, nullptr},
    {"bogus", false, false, false, "'bogus'"},
    {"landlock,bogus", false, false, false, "'bogus'"},
    {"landlock,", false, false, false, "unknown layer"},
    {"landlock;seccomp", false, false, false, "landlock;seccomp"},
    {"apparmor", false, false, false, "apparmor"},
};

}  // namespace

ParameterizedTestParameters(jail_plan, parse_requirements) {
    static criterion::parameters<RequireCase> params;
    if (params.empty()) {
        for (const RequireRow& r : kRequireRows) {
            params.push_back(
                RequireCase{cr_str(r.text), r.ok, r.landlock, r.seccomp, cr_str(r.needle)});
        }
    }
    return params;
}

ParameterizedTest(RequireCase* c, jail_plan, parse_requirements) {
    const auto req = parse_requirements(c->text);
    if (!c->ok) {
        cr_assert(!req.ok(), "'%s': expected an error", c->text);
        const std::string what = req.error().what();
        cr_expect(contains_any(what, c->needle), "'%s': error '%s' should mention %s", c->text,
                  what.c_str(), c->needle);
        cr_expect(contains_any(what, "landlock") && contains_any(what, "seccomp"),
                  "'%s': error '%s' should list the known layers", c->text, what.c_str());
        return;
    }
    cr_assert(req.ok(), "'%s': %s", c->text, describe(req).c_str());
    cr_expect_eq(req->landlock, c->landlock, "'%s': landlock %d", c->text, req->landlock);
    cr_expect_eq(req->seccomp, c->seccomp, "'%s': seccomp %d", c->text, req->seccomp);
}

Test(jail_plan, no_requirements_by_default) {
    const Requirements none;
    cr_expect(!none.landlock && !none.seccomp);
    HostFacts facts;  // nothing available
    const auto plan = plan_protection(facts, none, true);
    cr_expect(!plan.ok(), "an empty host must be refused, got %s", describe(plan).c_str());
}
