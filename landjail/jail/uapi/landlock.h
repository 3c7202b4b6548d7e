// SPDX-License-Identifier: Apache-2.0
// The Landlock ABI as of ABI 7 (Linux 6.15), defined here because Debian 12's kernel headers
// are 6.1 (ABI 2). Names carry an LJ_ prefix so that they never clash with a newer
// <linux/landlock.h>; values are the kernel's (include/uapi/linux/landlock.h).
#pragma once

#include <stdint.h>

#ifndef __NR_landlock_create_ruleset
#define __NR_landlock_create_ruleset 444
#endif
#ifndef __NR_landlock_add_rule
#define __NR_landlock_add_rule 445
#endif
#ifndef __NR_landlock_restrict_self
#define __NR_landlock_restrict_self 446
#endif

/* struct landlock_ruleset_attr, every field up to ABI 6 (ABI 7 added no field). */
struct lj_landlock_ruleset_attr {
    uint64_t handled_access_fs;
    uint64_t handled_access_net; /* ABI 4 */
    uint64_t scoped;             /* ABI 6 */
};

/* landlock_create_ruleset() flags */
#define LJ_LANDLOCK_CREATE_RULESET_VERSION (1U << 0)

/* landlock_add_rule() rule types */
#define LJ_LANDLOCK_RULE_PATH_BENEATH 1
#define LJ_LANDLOCK_RULE_NET_PORT 2 /* ABI 4 */

struct lj_landlock_path_beneath_attr {
    uint64_t allowed_access;
    int32_t parent_fd;
} __attribute__((packed));

struct lj_landlock_net_port_attr {
    uint64_t allowed_access;
    uint64_t port;
};

/* Filesystem access rights, by the ABI that introduced them. */
#define LJ_LANDLOCK_ACCESS_FS_EXECUTE (1ULL << 0)
#define LJ_LANDLOCK_ACCESS_FS_WRITE_FILE (1ULL << 1)
#define LJ_LANDLOCK_ACCESS_FS_READ_FILE (1ULL << 2)
#define LJ_LANDLOCK_ACCESS_FS_READ_DIR (1ULL << 3)
#define LJ_LANDLOCK_ACCESS_FS_REMOVE_DIR (1ULL << 4)
#define LJ_LANDLOCK_ACCESS_FS_REMOVE_FILE (1ULL << 5)
#define LJ_LANDLOCK_ACCESS_FS_MAKE_CHAR (1ULL << 6)
#define LJ_LANDLOCK_ACCESS_FS_MAKE_DIR (1ULL << 7)
#define LJ_LANDLOCK_ACCESS_FS_MAKE_REG (1ULL << 8)
#define LJ_LANDLOCK_ACCESS_FS_MAKE_SOCK (1ULL << 9)
#define LJ_LANDLOCK_ACCESS_FS_MAKE_FIFO (1ULL << 10)
#define LJ_LANDLOCK_ACCESS_FS_MAKE_BLOCK (1ULL << 11)
#define LJ_LANDLOCK_ACCESS_FS_MAKE_SYM (1ULL << 12)
#define LJ_LANDLOCK_ACCESS_FS_ABI1 ((1ULL << 13) - 1)
#define LJ_LANDLOCK_ACCESS_FS_REFER (1ULL << 13)     /* ABI 2 */
#define LJ_LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)  /* ABI 3 */
#define LJ_LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15) /* ABI 5 */

/* Network access rights (ABI 4). */
#define LJ_LANDLOCK_ACCESS_NET_BIND_TCP (1ULL << 0)
#define LJ_LANDLOCK_ACCESS_NET_CONNECT_TCP (1ULL << 1)

/* Scopes (ABI 6). */
#define LJ_LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0)
#define LJ_LANDLOCK_SCOPE_SIGNAL (1ULL << 1)

/* landlock_restrict_self() flags (ABI 7): audit logging of denials. */
#define LJ_LANDLOCK_RESTRICT_SELF_LOG_SAME_EXEC_OFF (1U << 0)
#define LJ_LANDLOCK_RESTRICT_SELF_LOG_NEW_EXEC_ON (1U << 1)
#define LJ_LANDLOCK_RESTRICT_SELF_LOG_SUBDOMAINS_OFF (1U << 2)
