// SPDX-License-Identifier: Apache-2.0
// The client table (proxy::ClientMap): landjail's supervisor stores the pid behind a client
// port in a shared memfd, the proxy takes it once; a table of the wrong size is refused.
#include "tests/unit/audit_support.hpp"

using namespace lj::test::audit_support;

// landjail's supervisor stores the pid behind a client port; the proxy takes it once.
Test(audit, client_map_store_and_take) {
    const int fd = memfd_create("client-map-test", MFD_CLOEXEC);
    cr_assert(fd >= 0);
    cr_assert_eq(ftruncate(fd, static_cast<off_t>(lj::proxy::ClientMap::kBytes)), 0);
    void* table =
        mmap(nullptr, lj::proxy::ClientMap::kBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    cr_assert(table != MAP_FAILED);
    auto map = lj::proxy::ClientMap::map(fd);
    cr_assert(map.ok(), "%s", map ? "" : map.error().message.c_str());
    cr_assert(!(*map)->take(40000).has_value(), "an empty slot names nobody");
    lj::proxy::ClientMap::store(table, 40000, getpid());
    lj::proxy::ClientMap::store(table, 65535, 7);
    auto who = (*map)->take(40000);
    cr_assert(who.has_value());
    cr_assert_eq(who->pid, getpid());
    char self[4096] = {};
    cr_assert(readlink("/proc/self/exe", self, sizeof self - 1) > 0);
    cr_assert_str_eq(who->exe.c_str(), self);
    cr_assert(!(*map)->take(40000).has_value(), "taken once");
    cr_assert_eq((*map)->take(65535)->pid, 7, "the last port is a slot too");
    munmap(table, lj::proxy::ClientMap::kBytes);
    close(fd);
}

Test(audit, client_map_rejects_wrong_size) {
    const int fd = memfd_create("client-map-small", MFD_CLOEXEC);
    cr_assert_eq(ftruncate(fd, 4096), 0);
    auto map = lj::proxy::ClientMap::map(fd);
    cr_assert(!map.ok());
    cr_assert(map.error().message.find("262144") != std::string::npos, "%s",
              map.error().message.c_str());
    close(fd);
}
