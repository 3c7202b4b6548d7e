// SPDX-License-Identifier: Apache-2.0
// Matcher benchmark: policy::Engine::evaluate against the plain linear scan
// (policy::linear_first_match) on the same deterministic rule sets of 10, 200 and 5000 rules and
// the same pre-normalized mix of 1024 requests (half allowed, half denied), so that only the
// decision is timed. Before anything is timed, every decision of the engine is checked against
// the linear scan. After the benchmarks, a summary gives decisions/s and ratios, with PASS/FAIL
// lines for the two targets. Single-threaded; `make bench` runs it with
// --benchmark_counters_tabular=true.

#include <time.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <benchmark/benchmark.h>

#include "policy/engine.hpp"
#include "policy/request.hpp"
#include "policy/rule.hpp"

namespace {

using lj::policy::Engine;
using lj::policy::HostPattern;
using lj::policy::PathPattern;
using lj::policy::Reason;
using lj::policy::Request;
using lj::policy::RequestView;
using lj::policy::Rule;

constexpr std::int64_t kRuleCounts[] = {10, 200, 5000};
constexpr std::size_t kMixSize = 1024;          // requests per rule set; half of them allowed
constexpr std::size_t kLateTargets = 16;        // allowed requests aimed at the last rules
constexpr std::size_t kServicesPerVendor = 50;  // svc0..svc49.vendorM.com appear in rules
constexpr std::uint64_t kSeed = 0x6c616e646a61696cULL;  // "landjail"

// The targets the summary checks.
constexpr double kTargetRate200 = 1'000'000.0;  // engine decisions/s with 200 rules
constexpr double kTargetSlowdown = 3.0;         // engine(200) / engine(5000) decisions/s

constexpr const char* kMethods[] = {"GET", "GET", "GET", "POST", "HEAD", "PUT"};
constexpr const char* kPaths[] = {"/", "/index.html", "/api/v2/items", "/static/app.js",
                                  "/v1/users/42"};

/// SplitMix64: the same sequence on every platform (std::*_distribution are not portable).
class Rng {
  public:
    explicit Rng(std::uint64_t seed) : state_(seed) {}

    std::uint64_t next() {
        std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }
    /// In [0, n); the modulo bias is irrelevant for n this small.
    std::size_t below(std::size_t n) { return next() % n; }
    bool chance(std::size_t percent) { return below(100) < percent; }
    std::string num(std::size_t n) { return std::to_string(below(n)); }
    std::string hex(std::size_t n) {
        char text[20];
        std::snprintf(text, sizeof text, "%zx", below(n));
        return text;
    }
    template <class T, std::size_t N>
    const T& pick(const T (&items)[N]) {
        return items[below(N)];
    }
    template <class T>
    const T& pick(const std::vector<T>& items) {
        return items[below(items.size())];
    }

  private:
    std::uint64_t state_;
};

[[noreturn]] void die(const std::string& message) {
    std::fprintf(stderr, "policy_bench: %s\n", message.c_str());
    std::exit(EXIT_FAILURE);
}

// ---- rule sets -----------------------------------------------------------------------------

std::string vendor(Rng& rng, std::size_t vendors) {
    return "vendor" + rng.num(vendors);
}

/// A domain= value: mostly names (exact service, `*.x.io`, `api.*.x.net`, apex with its
/// subdomains), sometimes an IPv4 or IPv6 literal. Never a bare `*`.
std::string rule_domain(Rng& rng, std::size_t vendors, bool ip) {
    if (ip) {
        return rng.chance(75) ? "10." + rng.num(256) + "." + rng.num(256) + "." + rng.num(256)
                              : "[2001:db8::" + rng.hex(0x10000) + "]";
    }
    const std::size_t kind = rng.below(100);
    if (kind < 45) {
        return "svc" + rng.num(kServicesPerVendor) + "." + vendor(rng, vendors) + ".com";
    }
    if (kind < 65) {
        return "*." + vendor(rng, vendors) + ".io";
    }
    if (kind < 80) {
        return "api.*." + vendor(rng, vendors) + ".net";
    }
    return vendor(rng, vendors) + ".org";
}

std::string rule_text(Rng& rng, std::size_t vendors, bool ip) {
    std::string text = "domain=" + rule_domain(rng, vendors, ip);
    if (rng.chance(30)) {
        text += rng.chance(80) ? " method=GET,HEAD" : " method=POST";
    }
    if (rng.chance(25)) {
        text += rng.chance(70) ? " path=/api/*,/v1/users" : " path=/v1/*";
    }
    if (rng.chance(30)) {
        text += " port=443";
    }
    return text;
}

std::size_t vendor_count(std::size_t rule_count) {
    return std::max<std::size_t>(3, rule_count / 5);
}

/// `count` distinct rules; about 1% are IP literals, and one always is (three quarters down).
std::vector<Rule> make_rules(std::size_t count, Rng& rng) {
    std::set<std::string> seen;
    std::vector<Rule> rules;
    while (rules.size() < count) {
        const bool ip = rules.size() == count * 3 / 4 || rng.chance(1);
        std::string text = rule_text(rng, vendor_count(count), ip);
        if (!seen.insert(text).second) {
            continue;
        }
        auto rule = lj::policy::parse_rule(text, "bench:" + std::to_string(rules.size() + 1));
        if (!rule) {
            die("cannot parse generated rule `" + text + "`: " + rule.error().what());
        }
        rules.push_back(std::move(*rule));
    }
    return rules;
}

// ---- request mix ---------------------------------------------------------------------------

/// A request before normalization.
struct Spec {
    std::string method = "GET";
    std::string host;
    std::uint16_t port = 443;
    std::string path = "/";

    std::string url() const {
        const bool plain = port == 80;
        const bool default_port = port == 80 || port == 443;
        return std::string(plain ? "http" : "https") + "://" + host +
               (default_port ? "" : ":" + std::to_string(port)) + path;
    }
};

/// A host the pattern matches: `*` labels filled in, sometimes an extra subdomain in front.
std::string host_for(const HostPattern& pattern, Rng& rng) {
    switch (pattern.kind) {
        case HostPattern::Kind::IPv4:
            return pattern.address;
        case HostPattern::Kind::IPv6:
            return "[" + pattern.address + "]";
        case HostPattern::Kind::Any:
            return "any" + rng.num(1000) + ".example";
        case HostPattern::Kind::Name:
            break;
    }
    std::string host = rng.chance(30) ? "edge" + rng.num(10) + "." : "";
    for (std::size_t i = 0; i < pattern.labels.size(); ++i) {
        host += i == 0 ? "" : ".";
        host += pattern.labels[i] == "*" ? "w" + rng.num(1000) : pattern.labels[i];
    }
    return host;
}

/// A path the pattern matches: `*` segments filled in, a trailing `*` with one or two.
std::string path_for(const PathPattern& pattern, Rng& rng) {
    std::string path;
    for (const std::string& segment : pattern.segments) {
        path += "/" + (segment == "*" ? "x" + rng.num(100) : segment);
    }
    if (!pattern.segments.empty() && pattern.segments.back() == "*" && rng.chance(50)) {
        path += "/" + rng.num(1000);
    }
    return path.empty() ? "/" : path;
}

/// A request that `rule` allows (an earlier rule may allow it too).
Spec spec_for(const Rule& rule, Rng& rng) {
    Spec spec;
    spec.host = rule.host ? host_for(*rule.host, rng) : "any" + rng.num(1000) + ".example";
    spec.method = rule.methods.empty() ? rng.pick(kMethods) : rng.pick(rule.methods);
    if (spec.method == "*") {
        spec.method = "GET";
    }
    spec.path = rule.paths.empty() ? rng.pick(kPaths) : path_for(rng.pick(rule.paths), rng);
    spec.port = rule.ports.empty() ? (rng.chance(80) ? 443 : 80) : rng.pick(rule.ports);
    return spec;
}

/// A near miss on a rule with method/path/port restrictions: right host, one key wrong.
Spec violate(const std::vector<Rule>& rules, Rng& rng) {
    for (;;) {
        const Rule& rule = rng.pick(rules);
        const bool m = !rule.methods.empty();
        const bool p = !rule.paths.empty();
        const bool o = !rule.ports.empty();
        if (!m && !p && !o) {
            continue;
        }
        Spec spec = spec_for(rule, rng);
        const std::size_t which = rng.below(3);
        if (m && (which == 0 || (!p && !o))) {
            spec.method = "DELETE";
        } else if (p && (which == 1 || !o)) {
            spec.path = "/admin/" + rng.num(100);
        } else {
            spec.port = 8443;
        }
        return spec;
    }
}

/// A request meant to match nothing: unrelated hosts, hosts sharing a suffix with rules, the
/// apex of a `*.x` rule, the wrong label under `api.*.x`, right host but wrong method/path/port,
/// unlisted IP literals.
Spec miss_spec(const std::vector<Rule>& rules, std::size_t vendors, std::size_t k, Rng& rng) {
    Spec spec;
    switch (k % 6) {
        case 0:
            spec.host = "host" + rng.num(1000) + ".unrelated" + rng.num(100) +
                        (rng.chance(50) ? ".com" : ".org");
            break;
        case 1:
            spec.host = "svc" + std::to_string(kServicesPerVendor + rng.below(100)) + "." +
                        vendor(rng, vendors) + ".com";
            break;
        case 2:
            spec.host = vendor(rng, vendors) + ".io";
            break;
        case 3:
            spec.host = "www.w" + rng.num(1000) + "." + vendor(rng, vendors) + ".net";
            break;
        case 4:
            return violate(rules, rng);
        default:
            spec.host = rng.chance(75) ? "192.0.2." + rng.num(256) : "[2001:db8:ffff::1]";
            break;
    }
    spec.method = rng.pick(kMethods);
    spec.path = rng.pick(kPaths);
    return spec;
}

struct Case {
    Engine engine;
    std::vector<Request> requests;
    std::vector<RequestView> views;     // into requests; what the benchmarks decide
    std::vector<std::size_t> hit_rule;  // first-match index of each allowed request (stats)
};

/// Normalizes `spec`; true (and kept) when the linear scan's verdict is `want_match`.
bool add_request(Case& c, const Spec& spec, bool want_match) {
    auto request = lj::policy::parse_request(spec.method, spec.url());
    if (!request) {
        die("cannot normalize generated request `" + spec.method + " " + spec.url() +
            "`: " + request.error().what());
    }
    const std::vector<Rule>& rules = c.engine.allow_rules();
    const Rule* rule = lj::policy::linear_first_match(rules, RequestView::of(*request));
    if ((rule != nullptr) != want_match) {
        return false;
    }
    if (rule != nullptr) {
        c.hit_rule.push_back(static_cast<std::size_t>(rule - rules.data()));
    }
    c.requests.push_back(std::move(*request));
    return true;
}

void make_mix(Case& c, Rng& rng) {
    const std::vector<Rule>& rules = c.engine.allow_rules();
    const std::size_t n = rules.size();
    std::size_t attempts = 0;
    auto bounded = [&] {
        if (++attempts > 100 * kMixSize) {
            die("cannot generate the request mix for " + std::to_string(n) + " rules");
        }
    };
    for (std::size_t k = 0; k < kMixSize / 2; ++k) {
        const std::size_t target = k < kLateTargets ? n - 1 - k % n : rng.below(n);
        while (!add_request(c, spec_for(rules[target], rng), true)) {
            bounded();  // spec_for always satisfies its rule; bounded all the same
        }
    }
    for (std::size_t k = 0; k < kMixSize / 2; ++k) {
        while (!add_request(c, miss_spec(rules, vendor_count(n), k, rng), false)) {
            bounded();
        }
    }
    for (std::size_t i = c.requests.size(); i > 1; --i) {  // Fisher-Yates, deterministic
        std::swap(c.requests[i - 1], c.requests[rng.below(i)]);
    }
    for (const Request& r : c.requests) {
        c.views.push_back(RequestView::of(r));
    }
}

std::string describe(const lj::policy::Decision& d) {
    return std::string(d.allowed ? "allowed" : "denied") + " (" +
           std::string(lj::policy::to_string(d.reason)) + ") by `" + std::string(d.rule_text()) +
           "`";
}

/// Exits unless the engine decides every request of the mix as the linear scan does.
void check_against_linear(const Case& c) {
    const std::vector<Rule>& rules = c.engine.allow_rules();
    for (std::size_t i = 0; i < c.views.size(); ++i) {
        const lj::policy::Decision d = c.engine.evaluate(c.views[i]);
        const Rule* want = lj::policy::linear_first_match(rules, c.views[i]);
        const bool same = d.rule == want && d.allowed == (want != nullptr) &&
                          d.reason == (want ? Reason::AllowRule : Reason::NoRuleMatched);
        if (!same) {
            die("engine and linear scan disagree with " + std::to_string(rules.size()) +
                " rules on `" + c.requests[i].method + " " + c.requests[i].url() + "`: engine " +
                describe(d) + ", linear scan " +
                (want ? "allowed by `" + want->text + "`" : "no rule") +
                "; not benchmarking a wrong matcher");
        }
    }
}

std::map<std::int64_t, std::unique_ptr<Case>>& cases() {
    static std::map<std::int64_t, std::unique_ptr<Case>> all;
    return all;
}

/// Builds every rule set and its request mix; one line of statistics each to `out`.
void build_cases(std::FILE* out) {
    for (const std::int64_t count : kRuleCounts) {
        Rng rng(kSeed ^ static_cast<std::uint64_t>(count));
        auto c = std::make_unique<Case>();
        c->engine = Engine(make_rules(static_cast<std::size_t>(count), rng), {});
        make_mix(*c, rng);
        check_against_linear(*c);
        std::vector<std::size_t> hits = c->hit_rule;
        std::sort(hits.begin(), hits.end());
        std::fprintf(
            out,
            "rules=%-5lld %zu requests: %zu allowed (first-match rule #%zu..#%zu, median #%zu), "
            "%zu denied; engine == linear scan on all\n",
            static_cast<long long>(count), c->views.size(), hits.size(), hits.front() + 1,
            hits.back() + 1, hits[hits.size() / 2] + 1, c->views.size() - hits.size());
        cases()[count] = std::move(c);
    }
    std::fflush(out);
}

// ---- benchmarks ----------------------------------------------------------------------------

/// CPU time of the calling thread, the clock the library's CPU column uses.
double thread_cpu_ns() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return 1e9 * static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec);
}

/// items/s = decisions/s, and ns_per_decision as a plain number (an inverted rate counter
/// would be printed with an "s" unit, which reads as seconds).
void report_rate(benchmark::State& state, std::size_t per_iteration, double cpu_ns) {
    const std::int64_t decisions = state.iterations() * static_cast<std::int64_t>(per_iteration);
    state.SetItemsProcessed(decisions);
    state.counters["ns_per_decision"] = cpu_ns / static_cast<double>(decisions);
}

void BM_Engine(benchmark::State& state) {
    const Case& c = *cases().at(state.range(0));
    const double start = thread_cpu_ns();
    for (auto _ : state) {
        for (const RequestView& view : c.views) {
            lj::policy::Decision d = c.engine.evaluate(view);
            benchmark::DoNotOptimize(d);
        }
    }
    report_rate(state, c.views.size(), thread_cpu_ns() - start);
}

void BM_Linear(benchmark::State& state) {
    const Case& c = *cases().at(state.range(0));
    const std::vector<Rule>& rules = c.engine.allow_rules();
    const double start = thread_cpu_ns();
    for (auto _ : state) {
        for (const RequestView& view : c.views) {
            const Rule* rule = lj::policy::linear_first_match(rules, view);
            benchmark::DoNotOptimize(rule);
        }
    }
    report_rate(state, c.views.size(), thread_cpu_ns() - start);
}

// The library's default minimum time (0.5 s, --benchmark_min_time) keeps `make bench` near 5 s.
// Time per iteration is one pass over the whole mix, hence microseconds.
BENCHMARK(BM_Engine)->Arg(10)->Arg(200)->Arg(5000)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Linear)->Arg(10)->Arg(200)->Arg(5000)->Unit(benchmark::kMicrosecond);

// ---- summary -------------------------------------------------------------------------------

/// Passes every report on to the default display reporter and keeps decisions/s per
/// benchmark (the median aggregate when repetitions are asked for, else the run itself).
class SummaryReporter final : public benchmark::BenchmarkReporter {
  public:
    explicit SummaryReporter(benchmark::BenchmarkReporter* display) : display_(display) {}

    bool ReportContext(const Context& context) override { return display_->ReportContext(context); }
    void ReportRuns(const std::vector<Run>& runs) override {
        for (const Run& run : runs) {
            record(run);
        }
        display_->ReportRuns(runs);
    }
    void Finalize() override { display_->Finalize(); }

    void print_summary() const;
    /// stdout under the console reporter; stderr under --benchmark_format=json|csv, whose
    /// output must stay machine-readable.
    std::FILE* text_stream() const {
        return dynamic_cast<benchmark::ConsoleReporter*>(display_) ? stdout : stderr;
    }

  private:
    struct Rate {
        double per_second = 0;
        bool median = false;
    };

    void record(const Run& run) {
        const bool median = run.run_type == Run::RT_Aggregate && run.aggregate_name == "median";
        const auto it = run.counters.find("items_per_second");
        if (run.error_occurred || (run.run_type == Run::RT_Aggregate && !median) ||
            it == run.counters.end()) {
            return;
        }
        const std::int64_t rules = std::strtoll(run.run_name.args.c_str(), nullptr, 10);
        Rate& slot = rates_[{run.run_name.function_name, rules}];
        if (median || !slot.median) {
            slot = {it->second.value, median};
        }
    }
    std::optional<double> rate(const char* function, std::int64_t rules) const {
        const auto it = rates_.find({function, rules});
        return it == rates_.end() ? std::nullopt : std::optional<double>(it->second.per_second);
    }

    benchmark::BenchmarkReporter* display_;
    std::map<std::pair<std::string, std::int64_t>, Rate> rates_;
};

/// 12345678.9 -> "12,345,679".
std::string grouped(double value) {
    std::string digits = std::to_string(std::llround(value));
    for (std::size_t i = digits.size(); i > 3; i -= 3) {
        digits.insert(i - 3, 1, ',');
    }
    return digits;
}

std::string or_na(const std::optional<double>& value) {
    return value ? grouped(*value) : "n/a";
}

void SummaryReporter::print_summary() const {
    if (rates_.empty()) {
        return;
    }
    std::FILE* out = text_stream();
    std::fflush(stdout);
    std::fprintf(out, "\nSummary (one thread, CPU time, %zu-request mix per rule set):\n",
                 kMixSize);
    std::fprintf(out, "%7s %22s %22s %14s\n", "rules", "engine decisions/s", "linear decisions/s",
                 "engine/linear");
    for (const std::int64_t rules : kRuleCounts) {
        const auto engine = rate("BM_Engine", rules);
        const auto linear = rate("BM_Linear", rules);
        char ratio[32] = "n/a";
        if (engine && linear) {
            std::snprintf(ratio, sizeof ratio, "%.2fx", *engine / *linear);
        }
        std::fprintf(out, "%7lld %22s %22s %14s\n", static_cast<long long>(rules),
                     or_na(engine).c_str(), or_na(linear).c_str(), ratio);
    }
    const auto e200 = rate("BM_Engine", 200);
    const auto e5000 = rate("BM_Engine", 5000);
    if (e200) {
        std::fprintf(out, "%s  engine >= 1,000,000 decisions/s with 200 rules on one core: %s/s\n",
                     *e200 >= kTargetRate200 ? "PASS" : "FAIL", grouped(*e200).c_str());
    }
    if (e200 && e5000) {
        const double slowdown = *e200 / *e5000;
        std::fprintf(out,
                     "%s  5000 rules no more than 3x slower than 200: engine(5000)/engine(200) "
                     "= %.3f, i.e. %.2fx slower\n",
                     slowdown <= kTargetSlowdown ? "PASS" : "FAIL", *e5000 / *e200, slowdown);
    }
    std::fflush(out);
}

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) {
        return EXIT_FAILURE;
    }
    SummaryReporter reporter(benchmark::CreateDefaultDisplayReporter());
    build_cases(reporter.text_stream());  // exits if the engine disagrees with the linear scan
    benchmark::RunSpecifiedBenchmarks(&reporter);
    reporter.print_summary();
    benchmark::Shutdown();
    return EXIT_SUCCESS;
}
