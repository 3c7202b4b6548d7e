// SPDX-License-Identifier: Apache-2.0
#include "proxy/base/fd.hpp"

#include <sys/socket.h>

#include <cerrno>

namespace lj {

int write_all(int fd, std::string_view data, bool is_socket) {
    while (!data.empty()) {
        const ssize_t n = is_socket ? ::send(fd, data.data(), data.size(), MSG_NOSIGNAL)
                                    : ::write(fd, data.data(), data.size());
        if (n < 0) {
            const int err = errno;
            if (err == EINTR) {
                continue;
            }
            return err;
        }
        if (n == 0) {
            return EIO;  // no progress on a non-empty write: give up rather than spin
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return 0;
}

}  // namespace lj
