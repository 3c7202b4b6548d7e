// SPDX-License-Identifier: Apache-2.0
// Admission control (proxy/admission.hpp): the descriptor budget behind the default
// max_connections and the pool size, the live-connection count, the once-per-interval
// warning counter, and the 503 answers.
#include <sys/resource.h>

#include <chrono>
#include <string>

#include "proxy/server/admission.hpp"
#include "tests/unit/lj_test.hpp"

using lj::proxy::Budget;
using lj::proxy::ConnectionCount;
using lj::proxy::ConnectionSlot;
using lj::proxy::IntervalCounter;
using lj::proxy::plan_budget;
using namespace std::chrono_literals;

Test(admission, budget_from_the_descriptor_limit) {
    // 1024 descriptors, 2 workers: 40 reserved, 984 usable, pool 123 (61 per worker),
    // 61 lingering refusals, (984 - 123 - 61) / 4 = 200 connections.
    Budget b = plan_budget(1024, 2, std::nullopt);
    cr_expect_eq(b.fit, 200U);
    cr_expect_eq(b.max_connections, 200U);
    cr_expect_eq(b.pool_per_worker, 61U);
    cr_expect_eq(b.lingering, 61U);
    // A large limit: the default stops at 4096, the pool at 256 per worker.
    b = plan_budget(1 << 20, 4, std::nullopt);
    cr_expect_eq(b.max_connections, lj::proxy::kDefaultMaxConnections);
    cr_expect_eq(b.pool_per_worker, 256U);
    cr_expect_eq(b.lingering, 64U);
    cr_expect(b.fit > 200000U, "fit %zu", b.fit);
    // An unlimited hard limit reads as the cap.
    b = plan_budget(RLIM_INFINITY, 1, std::nullopt);
    cr_expect_eq(b.max_connections, lj::proxy::kDefaultMaxConnections);
}

Test(admission, budget_never_zero_and_configured_kept) {
    Budget b = plan_budget(16, 4, std::nullopt);  // fewer than the reserve
    cr_expect_eq(b.fit, 0U);
    cr_expect_eq(b.max_connections, 1U, "at least one connection");
    cr_expect_eq(b.pool_per_worker, 0U);
    cr_expect_eq(b.lingering, 0U);
    b = plan_budget(64, 1, 1000);  // an explicit value is kept, even above what fits
    cr_expect_eq(b.max_connections, 1000U);
    cr_expect(b.fit < 1000U, "fit %zu", b.fit);
    b = plan_budget(1 << 20, 2, 3);
    cr_expect_eq(b.max_connections, 3U);
}

Test(admission, connection_count_caps_and_releases) {
    ConnectionCount count;
    cr_expect(count.try_acquire(2));
    cr_expect(count.try_acquire(2));
    cr_expect(!count.try_acquire(2), "a third over a cap of 2");
    cr_expect_eq(count.live(), 2U, "a refused acquire leaves no trace");
    {
        ConnectionSlot slot(&count);
        ConnectionSlot moved(std::move(slot));  // released once, by `moved`
    }
    cr_expect_eq(count.live(), 1U);
    cr_expect(count.try_acquire(2));
}

Test(admission, interval_counter_reports_once_per_interval) {
    IntervalCounter c(10s);
    const auto t0 = IntervalCounter::Clock::time_point{} + 1h;
    cr_expect_eq(c.note(t0), 1U, "the first occurrence is reported at once");
    for (int i = 1; i <= 1000; ++i) {
        cr_expect_eq(c.note(t0 + std::chrono::milliseconds(i)), 0U);
    }
    cr_expect_eq(c.note(t0 + 10s, 5), 1005U, "everything since the last report");
    cr_expect_eq(c.note(t0 + 11s), 0U);
    cr_expect_eq(c.total(), 1007U);
}

Test(admission, responses_are_503_with_retry_after) {
    const std::string r = lj::proxy::too_many_connections_response(50);
    cr_expect(r.rfind("HTTP/1.1 503 Service Unavailable\r\n", 0) == 0, "%s", r.c_str());
    cr_expect(r.find("\r\nRetry-After: 1\r\n") != std::string::npos, "%s", r.c_str());
    cr_expect(r.find("\r\nConnection: close\r\n") != std::string::npos, "%s", r.c_str());
    const std::string body = "landjail: too many connections (max_connections 50)\n";
    cr_expect(r.size() > body.size() && r.substr(r.size() - body.size()) == body, "%s", r.c_str());
    cr_expect(
        r.find("Content-Length: " + std::to_string(body.size()) + "\r\n") != std::string::npos,
        "%s", r.c_str());
    const std::string o = lj::proxy::out_of_descriptors_response();
    cr_expect(o.find("too many connections") != std::string::npos, "%s", o.c_str());
}
