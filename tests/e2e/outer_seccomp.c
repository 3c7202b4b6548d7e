// SPDX-License-Identifier: Apache-2.0
// outer-seccomp: run a command under a seccomp filter that imitates a degraded host, so the
// e2e tests can check how landjail degrades (DESIGN §3) on this fully capable kernel.
//
//   outer-seccomp [--landlock-enosys] [--pidfd-getfd-eperm] [--no-notify] -- COMMAND [ARG...]
//
//   --landlock-enosys     landlock_create_ruleset/add_rule/restrict_self fail with ENOSYS, as
//                         on a kernel without Landlock or under a profile that predates it
//                         (Docker's default profile answers unknown syscalls with ENOSYS)
//   --pidfd-getfd-eperm   pidfd_getfd fails with EPERM, as under Docker's default profile
//                         without CAP_SYS_PTRACE; landjail must use the NOTIF_ADDFD fallback
//   --no-notify           no seccomp user notification, as on kernels before 5.0 or under
//                         gVisor: seccomp(SECCOMP_GET_NOTIF_SIZES) fails with EINVAL, and so
//                         does a filter with SECCOMP_FILTER_FLAG_NEW_LISTENER
//
// Every other syscall is allowed. The filter is installed with NO_NEW_PRIVS and inherited by
// COMMAND and everything it starts (landjail, its proxy, the jailed process), like a container's.
// Exit status: COMMAND's (exec), 125 when the filter cannot be installed, 127 when COMMAND
// cannot be executed, 2 on a usage error.
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <seccomp.h>

// x86_64 numbers for libseccomp versions whose tables do not name these syscalls.
#ifndef __NR_landlock_create_ruleset
#define __NR_landlock_create_ruleset 444  // Linux 5.13
#define __NR_landlock_add_rule 445
#define __NR_landlock_restrict_self 446
#endif
#ifndef __NR_pidfd_getfd
#define __NR_pidfd_getfd 438  // Linux 5.6
#endif

static int usage(void) {
    fprintf(stderr,
            "usage: outer-seccomp [--landlock-enosys] [--pidfd-getfd-eperm] [--no-notify] -- "
            "COMMAND [ARG...]\n");
    return 2;
}

static int add(scmp_filter_ctx ctx, int err, int nr, const char* name) {
    const int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO((unsigned)err), nr, 0);
    if (rc < 0) {
        fprintf(stderr, "outer-seccomp: seccomp_rule_add(%s): %s\n", name, strerror(-rc));
        return -1;
    }
    return 0;
}

int main(int argc, char** argv) {
    int landlock_enosys = 0, pidfd_getfd_eperm = 0, no_notify = 0, i = 1;
    for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (strcmp(argv[i], "--landlock-enosys") == 0) {
            landlock_enosys = 1;
        } else if (strcmp(argv[i], "--pidfd-getfd-eperm") == 0) {
            pidfd_getfd_eperm = 1;
        } else if (strcmp(argv[i], "--no-notify") == 0) {
            no_notify = 1;
        } else {
            return usage();
        }
    }
    if (i + 1 >= argc) {
        return usage();
    }
    char** command = argv + i + 1;

    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (ctx == NULL) {
        fprintf(stderr, "outer-seccomp: seccomp_init failed\n");
        return 125;
    }
    int failed = 0;
    if (landlock_enosys) {
        failed |= add(ctx, ENOSYS, __NR_landlock_create_ruleset, "landlock_create_ruleset");
        failed |= add(ctx, ENOSYS, __NR_landlock_add_rule, "landlock_add_rule");
        failed |= add(ctx, ENOSYS, __NR_landlock_restrict_self, "landlock_restrict_self");
    }
    if (pidfd_getfd_eperm) {
        failed |= add(ctx, EPERM, __NR_pidfd_getfd, "pidfd_getfd");
    }
    if (no_notify) {
        // seccomp(SECCOMP_GET_NOTIF_SIZES = 3, ...) and seccomp(SECCOMP_SET_MODE_FILTER = 1,
        // flags with SECCOMP_FILTER_FLAG_NEW_LISTENER = 8, ...).
        int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EINVAL), SCMP_SYS(seccomp), 1,
                                  SCMP_A0(SCMP_CMP_EQ, 3));
        if (rc == 0) {
            rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EINVAL), SCMP_SYS(seccomp), 2,
                                  SCMP_A0(SCMP_CMP_EQ, 1), SCMP_A1(SCMP_CMP_MASKED_EQ, 8, 8));
        }
        if (rc < 0) {
            fprintf(stderr, "outer-seccomp: seccomp_rule_add(seccomp): %s\n", strerror(-rc));
            failed = 1;
        }
    }
    // Unprivileged callers need NO_NEW_PRIVS to install a filter; set it ourselves so the
    // state is explicit whoever runs us (libseccomp would set it too, SCMP_FLTATR_CTL_NNP).
    if (failed || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
        if (!failed) {
            perror("outer-seccomp: prctl(PR_SET_NO_NEW_PRIVS)");
        }
        seccomp_release(ctx);
        return 125;
    }
    const int rc = seccomp_load(ctx);
    seccomp_release(ctx);
    if (rc < 0) {
        fprintf(stderr, "outer-seccomp: seccomp_load: %s\n", strerror(-rc));
        return 125;
    }
    execvp(command[0], command);
    const int err = errno;
    fprintf(stderr, "outer-seccomp: execvp(%s): %s\n", command[0], strerror(err));
    return err == ENOENT ? 127 : 126;
}
