// SPDX-License-Identifier: Apache-2.0
// The supervisor's side effects on the kernel (sandbox2's mockable syscall wrapper): the
// seccomp user-notification ioctls on the listener, and the calls that act for a trapped
// caller (pidfd_getfd, connect, pidfd_send_signal). KernelNotifyIo makes the real calls; a
// unit test drives the Supervisor with a fake that records every answer. Reads of /proc and
// of the caller's memory are not here: they are in procfs.hpp and the Supervisor.
//
// Thread-safety: one Supervisor thread uses one NotifyIo.
#pragma once

#include <linux/seccomp.h>
#include <signal.h>
#include <sys/socket.h>

#include <cstdint>

#include "proxy/base/fd.hpp"

namespace lj::jail {

class NotifyIo {
  public:
    virtual ~NotifyIo() = default;

    enum class Received {
        Notification,  ///< `req` holds a notification to answer
        Nothing,       ///< interrupted, or the caller went away first: call again
        Finished,      ///< no process uses the filter any more (or the listener failed)
    };
    /// SECCOMP_IOCTL_NOTIF_RECV into `req` (zeroed first, as the kernel requires). Blocks.
    virtual Received recv(seccomp_notif& req) = 0;

    /// SECCOMP_IOCTL_NOTIF_SEND: the one answer to notification `resp.id` (retried after
    /// EINTR; ENOENT, the caller died meanwhile, is not an error).
    virtual void send(const seccomp_notif_resp& resp) = 0;

    /// SECCOMP_IOCTL_NOTIF_ID_VALID: the caller of notification `id` is still waiting.
    virtual bool id_valid(std::uint64_t id) = 0;

    /// SECCOMP_IOCTL_NOTIF_ADDFD: installs `add.srcfd` in the caller. 0 or the errno.
    virtual int addfd(const seccomp_notif_addfd& add) = 0;

    /// SECCOMP_IOCTL_NOTIF_SET_FLAGS with SYNC_WAKE_UP (Linux 6.6): the kernel switches
    /// directly between a trapped thread and the supervisor. False when unsupported.
    virtual bool set_sync_wakeup() = 0;

    /// pidfd_getfd(pidfd, fd, 0): our copy of the caller's file `fd` in `out`. 0 or the errno
    /// (ESRCH: the task is gone; EBADF: no such file; EPERM: refused).
    virtual int getfd(int pidfd, int fd, UniqueFd& out) = 0;

    /// connect(sock, addr, len) on a socket of ours (or our copy of the caller's). 0 or the
    /// errno (EINPROGRESS for a non-blocking socket).
    virtual int connect(int sock, const sockaddr_storage& addr, socklen_t len) = 0;

    /// pidfd_send_signal(pidfd, sig, info, flags); sig 0 only checks the process is alive.
    /// 0 or the errno.
    virtual int send_signal(int pidfd, int sig, siginfo_t* info, unsigned flags) = 0;
};

/// The real calls, on a listener fd the caller keeps open for the object's lifetime.
class KernelNotifyIo final : public NotifyIo {
  public:
    explicit KernelNotifyIo(int listener) : listener_(listener) {}

    Received recv(seccomp_notif& req) override;
    void send(const seccomp_notif_resp& resp) override;
    bool id_valid(std::uint64_t id) override;
    int addfd(const seccomp_notif_addfd& add) override;
    bool set_sync_wakeup() override;
    int getfd(int pidfd, int fd, UniqueFd& out) override;
    int connect(int sock, const sockaddr_storage& addr, socklen_t len) override;
    int send_signal(int pidfd, int sig, siginfo_t* info, unsigned flags) override;

  private:
    int listener_;
};

}  // namespace lj::jail
