/* SPDX-License-Identifier: Apache-2.0 */
/* Pure helpers of the LD_PRELOAD shim (libljshim_core.a): the placeholder-address table that
 * maps made-up addresses back to names, the CONNECT request and reply, and parsing the proxy
 * URL. No allocation, no stdio, no locks: every function is async-signal-safe unless its
 * comment says otherwise, and unit-tested (tests/unit/test_shim_core.cpp). */
#ifndef LJ_SHIM_CORE_H
#define LJ_SHIM_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- placeholder table ------------------------------------------------------------------
 * A name looked up in the jail gets the address 198.18.0.0 + 1 + index (IPv4, RFC 2544's
 * benchmarking range, never routed) or ::ffff:198.18.x.y (IPv6). The table lives in shared
 * memory (a file landjail creates, or an anonymous shared mapping), so it survives fork and is
 * shared by every process of the jail. Insertion is lock-free: a slot goes 0 (empty) ->
 * 1 (being written) -> 2 (ready). Zeroed memory is an empty table. */
#define LJ_TABLE_SLOTS 4096
#define LJ_NAME_MAX 253 /* a DNS name, without a trailing dot */

struct lj_table_slot {
    uint32_t state; /* accessed atomically */
    uint32_t len;
    char name[LJ_NAME_MAX + 3];
};

struct lj_table {
    struct lj_table_slot slot[LJ_TABLE_SLOTS];
};

/* 1 when `name` (len bytes) is usable as a host name: 1 to LJ_NAME_MAX characters from
 * letters, digits, '-', '.' and '_' (a trailing dot allowed); anything else could break the
 * CONNECT request line. */
int lj_is_host_name(const char* name, size_t len);

/* The index of `name` (len bytes, case-insensitive, a trailing dot ignored), inserted if new;
 * -1 when it is not a host name (lj_is_host_name) or the table is full. */
int lj_table_insert(struct lj_table* t, const char* name, size_t len);

/* The name of entry `index` (NUL-terminated, lower case) or NULL when there is none. */
const char* lj_table_name(const struct lj_table* t, int index);

/* 198.18.0.0 + 1 + index, host byte order. */
uint32_t lj_placeholder_v4(int index);

/* The table index of a placeholder address (sockaddr_in, or sockaddr_in6 with a v4-mapped
 * placeholder); -1 for any other address. */
int lj_placeholder_index(const struct sockaddr* sa, socklen_t len);

/* ---- addresses ----------------------------------------------------------------------------- */

/* 1 when `name` is an IPv4 or IPv6 literal (as inet_pton would accept), else 0. */
int lj_is_numeric_host(const char* name);

/* "1.2.3.4" or "[2001:db8::1]" for the CONNECT authority; returns the length written
 * (without the NUL), 0 when `sa` is not AF_INET/AF_INET6 or `size` is too small. */
size_t lj_format_host(char* buf, size_t size, const struct sockaddr* sa, socklen_t len);

/* The port of a sockaddr_in/sockaddr_in6 (host order), 0 for other families. */
uint16_t lj_port_of(const struct sockaddr* sa, socklen_t len);

/* 1 when `sa` is 127.0.0.0/8, ::1 or ::ffff:127.0.0.0/104, else 0. */
int lj_is_loopback(const struct sockaddr* sa, socklen_t len);

/* 1 when a and b are the same IPv4/IPv6 address and port (v4-mapped equals IPv4), else 0. */
int lj_same_endpoint(const struct sockaddr* a, socklen_t alen, const struct sockaddr* b,
                     socklen_t blen);

/* Parses a proxy URL as landjail sets it, "http://127.0.0.1:PORT" or "http://[::1]:PORT"
 * (a trailing "/" is allowed; IPv6 only in brackets, IPv4 never); 0 on success, -1 otherwise.
 * Names are not resolved. */
int lj_parse_proxy_url(const char* url, struct sockaddr_storage* out, socklen_t* out_len);

/* ---- CONNECT ------------------------------------------------------------------------------ */

/* `port` in decimal into out (at least 6 bytes), NUL-terminated; returns its length. */
size_t lj_format_port(char* out, uint16_t port);

/* "CONNECT host:port HTTP/1.1\r\nHost: host:port\r\n\r\n" into buf; the length, or 0 when it
 * does not fit or `host` is empty or holds CR, LF, space or tab. `host` is a name or the
 * output of lj_format_host. */
size_t lj_format_connect(char* buf, size_t size, const char* host, uint16_t port);

/* The field the shim's CONNECT carries: the tunnel is a program's own TCP connection, which
 * may not speak TLS, so the proxy refuses a denied one at CONNECT instead of intercepting it
 * (tls.intercept_denied), and the program's connect() fails at once. */
#define LJ_RAW_TUNNEL_FIELD "X-Landjail-Tunnel: raw"

/* Looks at the first `len` bytes of the proxy's reply. Returns 1 when the header block is
 * complete (*status = the HTTP status, *header_len = its length up to and including the blank
 * line), 0 when more bytes are needed, -1 when it is not an HTTP/1.x reply. */
int lj_parse_connect_reply(const char* buf, size_t len, int* status, size_t* header_len);

/* The value of the X-Landjail-Decision or the first line of the body is not parsed; the shim
 * reports the status line. Copies the reason phrase of the status line (at most size-1
 * bytes, NUL-terminated); returns its length. */
size_t lj_reply_reason(const char* buf, size_t len, char* out, size_t size);

#ifdef __cplusplus
}
#endif

#endif
