/* SPDX-License-Identifier: Apache-2.0 */
/* liblandjail-shim.so (DESIGN §3): cooperation, not enforcement. Preloaded by landjail into
 * the command, it makes programs that ignore HTTP_PROXY work through the proxy:
 * - name lookups answer placeholder addresses (198.18.0.0/15) mapped to the name in a table
 *   shared by the whole jail, so no DNS packet is needed;
 * - connect() of a TCP socket to anything but the proxy connects the same socket to the proxy
 *   and opens a CONNECT tunnel to the name (or the literal address) and port;
 * - UDP to anything but loopback fails with EACCES and one line on stderr.
 * The seccomp supervisor still decides every connect; static binaries and raw syscalls bypass
 * the shim and meet the kernel layers. Hooks make only async-signal-safe calls (STYLE "Shim
 * rules"); the name lookups call libc's own resolver with the placeholder, as libc would. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim/core.h"

#define LJ_EXPORT __attribute__((visibility("default")))
#define LJ_HANDSHAKE_MS 30000 /* the proxy answers a CONNECT within this or we give up */

typedef int (*lj_connect_fn)(int, const struct sockaddr*, socklen_t);
typedef int (*lj_getaddrinfo_fn)(const char*, const char*, const struct addrinfo*,
                                 struct addrinfo**);
typedef struct hostent* (*lj_gethostbyname2_fn)(const char*, int);
typedef int (*lj_gethostbyname2_r_fn)(const char*, int, struct hostent*, char*, size_t,
                                      struct hostent**, int*);
typedef ssize_t (*lj_sendto_fn)(int, const void*, size_t, int, const struct sockaddr*, socklen_t);
typedef ssize_t (*lj_sendmsg_fn)(int, const struct msghdr*, int);

/* Written once by the constructor, read-only afterwards. */
static struct {
    int ready; /* the proxy address is known: tunnel */
    int debug;
    struct sockaddr_storage proxy;
    socklen_t proxy_len;
    struct lj_table* table;
    lj_connect_fn connect;
    lj_getaddrinfo_fn getaddrinfo;
    lj_gethostbyname2_fn gethostbyname2;
    lj_gethostbyname2_r_fn gethostbyname2_r;
    lj_sendto_fn sendto;
    lj_sendmsg_fn sendmsg;
} lj;

/* ---- small async-signal-safe helpers ---------------------------------------------------- */

struct lj_line {
    char buf[512];
    size_t len;
};

static void lj_add(struct lj_line* l, const char* s) {
    size_t n = strlen(s);
    if (n > sizeof l->buf - 1 - l->len) {
        n = sizeof l->buf - 1 - l->len;
    }
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void lj_add_port(struct lj_line* l, uint16_t port) {
    char text[6];
    lj_format_port(text, port);
    lj_add(l, text);
}

/* One write(2) of the line and a newline, errno untouched. */
static void lj_say(struct lj_line* l) {
    const int saved = errno;
    if (l->len < sizeof l->buf) {
        l->buf[l->len++] = '\n';
    }
    ssize_t rc = write(STDERR_FILENO, l->buf, l->len);
    (void)rc;
    errno = saved;
}

static int lj_real_connect(int fd, const struct sockaddr* sa, socklen_t len) {
    if (lj.connect) {
        return lj.connect(fd, sa, len);
    }
    return (int)syscall(SYS_connect, fd, sa, len);
}

static void* lj_next(const char* name, void* self) {
    void* f = dlsym(RTLD_NEXT, name);
    if (f == self) {
        abort(); /* our own symbol again: the link order is broken */
    }
    return f;
}

/* ---- init --------------------------------------------------------------------------------- */

static struct lj_table* lj_map_table(void) {
    const char* path = getenv("LANDJAIL_SHIM_TABLE");
    void* t = MAP_FAILED;
    if (path && *path) {
        const int fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd >= 0) {
            t = mmap(NULL, sizeof(struct lj_table), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
            close(fd);
        }
    }
    if (t == MAP_FAILED) {
        /* No shared file: this process and its forks still agree. */
        t = mmap(NULL, sizeof(struct lj_table), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                 -1, 0);
    }
    return t == MAP_FAILED ? NULL : t;
}

__attribute__((constructor)) static void lj_init(void) {
    lj.connect = (lj_connect_fn)lj_next("connect", (void*)connect);
    lj.getaddrinfo = (lj_getaddrinfo_fn)lj_next("getaddrinfo", (void*)getaddrinfo);
    lj.gethostbyname2 = (lj_gethostbyname2_fn)lj_next("gethostbyname2", (void*)gethostbyname2);
    lj.gethostbyname2_r =
        (lj_gethostbyname2_r_fn)lj_next("gethostbyname2_r", (void*)gethostbyname2_r);
    lj.sendto = (lj_sendto_fn)lj_next("sendto", (void*)sendto);
    lj.sendmsg = (lj_sendmsg_fn)lj_next("sendmsg", (void*)sendmsg);
    lj.debug = getenv("LANDJAIL_SHIM_DEBUG") != NULL;
    lj.table = lj_map_table();
    /* landjail's own variable first: programs that drop the proxy variables keep it. */
    static const char* const kVars[] = {
        "LANDJAIL_SHIM_PROXY", "HTTP_PROXY", "http_proxy", "HTTPS_PROXY",
        "https_proxy",         "ALL_PROXY",  "all_proxy"};
    for (size_t i = 0; i < sizeof kVars / sizeof kVars[0]; i++) {
        if (lj_parse_proxy_url(getenv(kVars[i]), &lj.proxy, &lj.proxy_len) == 0) {
            lj.ready = lj.table != NULL;
            break;
        }
    }
}

/* ---- connect -------------------------------------------------------------------------------- */

/* Waits for `events` on fd within the handshake budget; 0 when ready. */
static int lj_wait(int fd, short events) {
    struct pollfd p = {fd, events, 0};
    for (;;) {
        const int rc = poll(&p, 1, LJ_HANDSHAKE_MS);
        if (rc > 0) {
            return 0;
        }
        if (rc == 0 || errno != EINTR) {
            return -1;
        }
    }
}

static int lj_send_all(int fd, const char* buf, size_t len) {
    while (len > 0) {
        const ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && errno == EAGAIN && lj_wait(fd, POLLOUT) == 0) {
            continue;
        }
        if (n <= 0) {
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads the proxy's reply to CONNECT without taking a byte of the tunnel: what is queued is
 * looked at with MSG_PEEK, and only header bytes are consumed (all of them when the blank line
 * is not there yet, exactly up to it when it is). Returns the status, or -1. */
static int lj_read_reply(int fd, char* reason, size_t reason_size) {
    char acc[4096];
    size_t have = 0;
    while (have < sizeof acc) {
        if (lj_wait(fd, POLLIN) != 0) {
            return -1;
        }
        const ssize_t n = recv(fd, acc + have, sizeof acc - have, MSG_PEEK);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
            continue;
        }
        if (n <= 0) {
            return -1;
        }
        int status = 0;
        size_t header_len = 0;
        const int rc = lj_parse_connect_reply(acc, have + (size_t)n, &status, &header_len);
        if (rc < 0) {
            return -1;
        }
        const size_t take = rc == 1 ? header_len - have : (size_t)n;
        for (size_t left = take; left > 0;) {
            const ssize_t got = recv(fd, acc + have + (take - left), left, 0);
            if (got < 0 && errno == EINTR) {
                continue;
            }
            if (got <= 0) {
                return -1;
            }
            left -= (size_t)got;
        }
        have += take;
        if (rc == 1) {
            lj_reply_reason(acc, have, reason, reason_size);
            return status;
        }
    }
    return -1; /* a header block larger than 4 KiB: not our proxy */
}

/* The proxy's address in the socket's own family (v4-mapped for an AF_INET6 socket). */
static socklen_t lj_proxy_for(int fd, struct sockaddr_storage* out) {
    int domain = 0;
    socklen_t dl = sizeof domain;
    *out = lj.proxy;
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &dl) == 0 && domain == AF_INET6 &&
        lj.proxy.ss_family == AF_INET) {
        const struct sockaddr_in* in = (const struct sockaddr_in*)(const void*)&lj.proxy;
        struct sockaddr_in6* in6 = (struct sockaddr_in6*)(void*)out;
        memset(out, 0, sizeof *out);
        in6->sin6_family = AF_INET6;
        in6->sin6_port = in->sin_port;
        in6->sin6_addr.s6_addr[10] = 0xff;
        in6->sin6_addr.s6_addr[11] = 0xff;
        memcpy(in6->sin6_addr.s6_addr + 12, &in->sin_addr, 4);
        return sizeof *in6;
    }
    return lj.proxy_len;
}

static int lj_refuse(int err, const char* what, const char* host, uint16_t port,
                     const char* detail) {
    struct lj_line l = {.len = 0};
    lj_add(&l, "landjail: ");
    lj_add(&l, what);
    lj_add(&l, " ");
    lj_add(&l, host);
    lj_add(&l, ":");
    lj_add_port(&l, port);
    lj_add(&l, detail);
    lj_say(&l);
    errno = err;
    return -1;
}

/* connect(fd, addr) through a CONNECT tunnel of the proxy. */
static int lj_tunnel(int fd, const struct sockaddr* addr, socklen_t len, int saved_errno) {
    struct sockaddr_storage peer;
    socklen_t peer_len = sizeof peer;
    if (getpeername(fd, (struct sockaddr*)&peer, &peer_len) == 0) {
        errno = EISCONN; /* connected already (a tunnel we opened): as the kernel answers */
        return -1;
    }
    char host[LJ_NAME_MAX + 8];
    const int index = lj_placeholder_index(addr, len);
    const uint16_t port = lj_port_of(addr, len);
    if (index >= 0) {
        const char* name = lj_table_name(lj.table, index);
        if (!name) {
            errno = EHOSTUNREACH; /* a placeholder nobody handed out */
            return -1;
        }
        strcpy(host, name);
    } else if (lj_format_host(host, sizeof host, addr, len) == 0) {
        errno = EAFNOSUPPORT;
        return -1;
    }
    const int flags = fcntl(fd, F_GETFL);
    if (flags < 0) {
        return -1;
    }
    if ((flags & O_NONBLOCK) && fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0) {
        return -1;
    }
    struct sockaddr_storage proxy;
    const socklen_t proxy_len = lj_proxy_for(fd, &proxy);
    int rc;
    /* A trapped connect interrupted before the supervisor took it did nothing: retry. */
    while ((rc = lj_real_connect(fd, (const struct sockaddr*)&proxy, proxy_len)) < 0 &&
           errno == EINTR) {
    }
    char request[2 * LJ_NAME_MAX + 96];
    char reason[128] = "";
    int status = -1;
    if (rc == 0 || errno == EISCONN) {
        const size_t n = lj_format_connect(request, sizeof request, host, port);
        if (n > 0 && lj_send_all(fd, request, n) == 0) {
            status = lj_read_reply(fd, reason, sizeof reason);
        }
    }
    fcntl(fd, F_SETFL, flags);
    if (status == 200) {
        if (lj.debug) {
            lj_refuse(0, "tunnel to", host, port, " through the proxy");
        }
        if (flags & O_NONBLOCK) {
            errno = EINPROGRESS; /* already connected: poll and SO_ERROR report success */
            return -1;
        }
        errno = saved_errno;
        return 0;
    }
    if (status < 0) {
        return lj_refuse(ECONNREFUSED, "CONNECT", host, port, " failed: the proxy did not answer");
    }
    struct lj_line detail = {.len = 0};
    lj_add(&detail, " refused by the proxy: ");
    char code[4] = {(char)('0' + status / 100), (char)('0' + status / 10 % 10),
                    (char)('0' + status % 10), '\0'};
    lj_add(&detail, code);
    lj_add(&detail, " ");
    lj_add(&detail, reason);
    detail.buf[detail.len] = '\0';
    return lj_refuse(ECONNREFUSED, "CONNECT", host, port, detail.buf);
}

static int lj_socket_type(int fd) {
    int type = -1;
    socklen_t tl = sizeof type;
    return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) == 0 ? type : -1;
}

static int lj_udp_refused(const struct sockaddr* addr, socklen_t len) {
    char host[64];
    if (lj_format_host(host, sizeof host, addr, len) == 0) {
        strcpy(host, "?");
    }
    return lj_refuse(EACCES, "UDP to", host, lj_port_of(addr, len),
                     " refused: only HTTP(S) through the proxy leaves the jail");
}

LJ_EXPORT int connect(int fd, const struct sockaddr* addr, socklen_t len) {
    if (!lj.ready || !addr || (addr->sa_family != AF_INET && addr->sa_family != AF_INET6)) {
        return lj_real_connect(fd, addr, len);
    }
    const int saved = errno;
    const int type = lj_socket_type(fd);
    if (type == SOCK_DGRAM && !lj_is_loopback(addr, len)) {
        return lj_udp_refused(addr, len);
    }
    if (type != SOCK_STREAM ||
        lj_same_endpoint(addr, len, (const struct sockaddr*)&lj.proxy, lj.proxy_len)) {
        errno = saved;
        return lj_real_connect(fd, addr, len);
    }
    return lj_tunnel(fd, addr, len, saved);
}

LJ_EXPORT ssize_t sendto(int fd, const void* buf, size_t n, int flags, const struct sockaddr* addr,
                         socklen_t len) {
    if (lj.ready && addr && (addr->sa_family == AF_INET || addr->sa_family == AF_INET6) &&
        !lj_is_loopback(addr, len) && lj_socket_type(fd) == SOCK_DGRAM) {
        return lj_udp_refused(addr, len);
    }
    if (!lj.sendto) {
        return syscall(SYS_sendto, fd, buf, n, flags, addr, len);
    }
    return lj.sendto(fd, buf, n, flags, addr, len);
}

LJ_EXPORT ssize_t sendmsg(int fd, const struct msghdr* msg, int flags) {
    const struct sockaddr* addr = msg ? (const struct sockaddr*)msg->msg_name : NULL;
    if (lj.ready && addr && (addr->sa_family == AF_INET || addr->sa_family == AF_INET6) &&
        !lj_is_loopback(addr, msg->msg_namelen) && lj_socket_type(fd) == SOCK_DGRAM) {
        return lj_udp_refused(addr, msg->msg_namelen);
    }
    if (!lj.sendmsg) {
        return syscall(SYS_sendmsg, fd, msg, flags);
    }
    return lj.sendmsg(fd, msg, flags);
}

/* ---- name lookups --------------------------------------------------------------------------- */

/* Names libc answers itself: literals and localhost. */
static int lj_libc_answers(const char* name) {
    struct in_addr a;
    if (!lj.table || !name || !*name || lj_is_numeric_host(name) || inet_aton(name, &a)) {
        return 1; /* inet_aton: the forms libc also reads as numbers ("127.1", "2130706433") */
    }
    const size_t n = strlen(name);
    static const char kLocal[] = "localhost";
    const size_t k = sizeof kLocal - 1;
    return (n == k && strcasecmp(name, kLocal) == 0) ||
           (n > k && name[n - k - 1] == '.' && strcasecmp(name + n - k, kLocal) == 0);
}

/* The placeholder for `name` as text ("198.18.0.5", or "::ffff:198.18.0.5" for AF_INET6). */
static int lj_placeholder_text(const char* name, int family, char* out, size_t size) {
    const int index = lj_table_insert(lj.table, name, strlen(name));
    if (index < 0) {
        return -1;
    }
    struct sockaddr_in in = {.sin_family = AF_INET};
    in.sin_addr.s_addr = htonl(lj_placeholder_v4(index));
    char v4[32];
    if (lj_format_host(v4, sizeof v4, (const struct sockaddr*)&in, sizeof in) == 0) {
        return -1;
    }
    const char* prefix = family == AF_INET6 ? "::ffff:" : "";
    if (strlen(prefix) + strlen(v4) + 1 > size) {
        return -1;
    }
    strcpy(out, prefix);
    strcat(out, v4);
    return 0;
}

LJ_EXPORT int getaddrinfo(const char* node, const char* service, const struct addrinfo* hints,
                          struct addrinfo** res) {
    lj_getaddrinfo_fn real = lj.getaddrinfo;
    if (!real) {
        real = (lj_getaddrinfo_fn)lj_next("getaddrinfo", (void*)getaddrinfo);
    }
    const int flags = hints ? hints->ai_flags : 0;
    if ((flags & AI_NUMERICHOST) || lj_libc_answers(node)) {
        return real(node, service, hints, res);
    }
    /* What libc reads as a number ("127.1", "2130706433") stays libc's. */
    struct addrinfo numeric;
    if (hints) {
        numeric = *hints;
    } else {
        memset(&numeric, 0, sizeof numeric);
    }
    numeric.ai_flags |= AI_NUMERICHOST;
    if (real(node, service, &numeric, res) == 0) {
        return 0;
    }
    if (!lj_is_host_name(node, strlen(node))) {
        return EAI_NONAME;
    }
    const int family = hints ? hints->ai_family : AF_UNSPEC;
    char text[64];
    if (lj_placeholder_text(node, family, text, sizeof text) != 0) {
        return EAI_FAIL;
    }
    struct addrinfo h;
    if (hints) {
        h = *hints;
    } else {
        memset(&h, 0, sizeof h);
        h.ai_flags = AI_V4MAPPED | AI_ADDRCONFIG;
    }
    h.ai_flags = (h.ai_flags | AI_NUMERICHOST) & ~AI_ADDRCONFIG;
    const int rc = real(text, service, &h, res);
    if (rc == 0 && (flags & AI_CANONNAME) && *res) {
        /* libc names the placeholder; the canonical name is the one asked for. */
        const int index = lj_table_insert(lj.table, node, strlen(node));
        const char* canon = lj_table_name(lj.table, index);
        char* copy = canon ? strdup(canon) : NULL;
        if (copy) {
            free((*res)->ai_canonname);
            (*res)->ai_canonname = copy;
        }
    }
    return rc;
}

static int lj_fill_hostent(const char* name, int af, struct hostent* ret, char* buf, size_t buflen,
                           int* h_errnop) {
    const int index = lj_table_insert(lj.table, name, strlen(name));
    if (index < 0) {
        if (h_errnop) {
            *h_errnop = NO_RECOVERY;
        }
        return -1;
    }
    const char* canon = lj_table_name(lj.table, index);
    const size_t addr_len = af == AF_INET6 ? 16 : 4;
    const size_t name_len = strlen(canon) + 1;
    /* buf: [address][ptr list: addr, NULL][aliases: NULL][name] */
    const size_t align = sizeof(char*);
    const size_t ptrs_at = (addr_len + align - 1) / align * align;
    const size_t need = ptrs_at + 3 * sizeof(char*) + name_len;
    if (buflen < need) {
        return ERANGE;
    }
    const uint32_t v4 = htonl(lj_placeholder_v4(index));
    if (af == AF_INET6) {
        memset(buf, 0, 16);
        buf[10] = (char)0xff;
        buf[11] = (char)0xff;
        memcpy(buf + 12, &v4, 4);
    } else {
        memcpy(buf, &v4, 4);
    }
    char** ptrs = (char**)(void*)(buf + ptrs_at);
    ptrs[0] = buf;
    ptrs[1] = NULL;
    ptrs[2] = NULL;
    char* name_copy = (char*)(ptrs + 3);
    memcpy(name_copy, canon, name_len);
    ret->h_name = name_copy;
    ret->h_aliases = ptrs + 2;
    ret->h_addrtype = af;
    ret->h_length = (int)addr_len;
    ret->h_addr_list = ptrs;
    return 0;
}

LJ_EXPORT int gethostbyname2_r(const char* name, int af, struct hostent* ret, char* buf,
                               size_t buflen, struct hostent** result, int* h_errnop) {
    if (lj_libc_answers(name) || (af != AF_INET && af != AF_INET6)) {
        lj_gethostbyname2_r_fn real = lj.gethostbyname2_r;
        if (!real) {
            real = (lj_gethostbyname2_r_fn)lj_next("gethostbyname2_r", (void*)gethostbyname2_r);
        }
        return real(name, af, ret, buf, buflen, result, h_errnop);
    }
    const int rc = lj_fill_hostent(name, af, ret, buf, buflen, h_errnop);
    *result = rc == 0 ? ret : NULL;
    return rc < 0 ? ENOENT : rc;
}

LJ_EXPORT int gethostbyname_r(const char* name, struct hostent* ret, char* buf, size_t buflen,
                              struct hostent** result, int* h_errnop) {
    return gethostbyname2_r(name, AF_INET, ret, buf, buflen, result, h_errnop);
}

LJ_EXPORT struct hostent* gethostbyname2(const char* name, int af) {
    /* Like libc's: one static result per process (not thread-safe, by contract). */
    static struct hostent ent;
    static char buf[1024];
    struct hostent* result = NULL;
    int herr = 0;
    if (lj_libc_answers(name)) {
        lj_gethostbyname2_fn real = lj.gethostbyname2;
        if (!real) {
            real = (lj_gethostbyname2_fn)lj_next("gethostbyname2", (void*)gethostbyname2);
        }
        return real(name, af);
    }
    if (gethostbyname2_r(name, af, &ent, buf, sizeof buf, &result, &herr) != 0) {
        h_errno = herr ? herr : HOST_NOT_FOUND;
        return NULL;
    }
    return result;
}

LJ_EXPORT struct hostent* gethostbyname(const char* name) {
    return gethostbyname2(name, AF_INET);
}
