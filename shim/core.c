/* SPDX-License-Identifier: Apache-2.0 */
#include "shim/core.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

enum { kEmpty = 0, kWriting = 1, kReady = 2 };
#define LJ_PLACEHOLDER_BASE 0xC6120000u /* 198.18.0.0 */

static char lj_lower(char c) {
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static uint32_t lj_hash(const char* s, size_t len) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h = (h ^ (uint8_t)lj_lower(s[i])) * 16777619u;
    }
    return h;
}

static int lj_name_equal(const struct lj_table_slot* slot, const char* name, size_t len) {
    if (slot->len != len) {
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        if (slot->name[i] != lj_lower(name[i])) {
            return 0;
        }
    }
    return 1;
}

int lj_table_insert(struct lj_table* t, const char* name, size_t len) {
    if (!lj_is_host_name(name, len)) {
        return -1;
    }
    if (name[len - 1] == '.') {
        len--;
    }
    const uint32_t start = lj_hash(name, len) % LJ_TABLE_SLOTS;
    for (uint32_t probe = 0; probe < LJ_TABLE_SLOTS; probe++) {
        struct lj_table_slot* slot = &t->slot[(start + probe) % LJ_TABLE_SLOTS];
        uint32_t state = __atomic_load_n(&slot->state, __ATOMIC_ACQUIRE);
        if (state == kEmpty) {
            uint32_t expected = kEmpty;
            if (__atomic_compare_exchange_n(&slot->state, &expected, kWriting, 0, __ATOMIC_ACQ_REL,
                                            __ATOMIC_ACQUIRE)) {
                for (size_t i = 0; i < len; i++) {
                    slot->name[i] = lj_lower(name[i]);
                }
                slot->name[len] = '\0';
                slot->len = (uint32_t)len;
                __atomic_store_n(&slot->state, kReady, __ATOMIC_RELEASE);
                return (int)((start + probe) % LJ_TABLE_SLOTS);
            }
            state = expected;
        }
        /* Another process is writing this slot: wait for it (a few stores away). */
        for (unsigned spin = 0; state == kWriting && spin < (1u << 24); spin++) {
            state = __atomic_load_n(&slot->state, __ATOMIC_ACQUIRE);
        }
        if (state == kReady && lj_name_equal(slot, name, len)) {
            return (int)((start + probe) % LJ_TABLE_SLOTS);
        }
    }
    return -1;
}

const char* lj_table_name(const struct lj_table* t, int index) {
    if (index < 0 || index >= LJ_TABLE_SLOTS) {
        return NULL;
    }
    const struct lj_table_slot* slot = &t->slot[index];
    if (__atomic_load_n(&slot->state, __ATOMIC_ACQUIRE) != kReady) {
        return NULL;
    }
    return slot->name;
}

uint32_t lj_placeholder_v4(int index) {
    return LJ_PLACEHOLDER_BASE + 1u + (uint32_t)index;
}

static int lj_index_of_v4(uint32_t host_order) {
    if (host_order <= LJ_PLACEHOLDER_BASE || host_order > LJ_PLACEHOLDER_BASE + LJ_TABLE_SLOTS) {
        return -1;
    }
    return (int)(host_order - LJ_PLACEHOLDER_BASE - 1u);
}

/* The IPv4 address of sa (AF_INET, or AF_INET6 v4-mapped) in host order; 0 if none. */
static int lj_v4_of(const struct sockaddr* sa, socklen_t len, uint32_t* out) {
    if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        const struct sockaddr_in* in = (const struct sockaddr_in*)(const void*)sa;
        *out = ntohl(in->sin_addr.s_addr);
        return 1;
    }
    if (sa->sa_family == AF_INET6 && len >= 24) {
        const struct sockaddr_in6* in6 = (const struct sockaddr_in6*)(const void*)sa;
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
            uint32_t v;
            memcpy(&v, in6->sin6_addr.s6_addr + 12, 4);
            *out = ntohl(v);
            return 1;
        }
    }
    return 0;
}

int lj_placeholder_index(const struct sockaddr* sa, socklen_t len) {
    uint32_t v4;
    return lj_v4_of(sa, len, &v4) ? lj_index_of_v4(v4) : -1;
}

int lj_is_host_name(const char* name, size_t len) {
    if (len > 0 && name[len - 1] == '.') {
        len--;
    }
    if (len == 0 || len > LJ_NAME_MAX) {
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        const char c = name[i];
        const int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       c == '-' || c == '.' || c == '_';
        if (!ok) {
            return 0;
        }
    }
    return 1;
}

int lj_is_numeric_host(const char* name) {
    unsigned char buf[16];
    return name && (inet_pton(AF_INET, name, buf) == 1 || inet_pton(AF_INET6, name, buf) == 1);
}

size_t lj_format_host(char* buf, size_t size, const struct sockaddr* sa, socklen_t len) {
    char text[INET6_ADDRSTRLEN];
    uint32_t v4;
    if (lj_v4_of(sa, len, &v4)) {
        const uint32_t n = htonl(v4);
        if (!inet_ntop(AF_INET, &n, text, sizeof text)) {
            return 0;
        }
        const size_t n_text = strlen(text);
        if (n_text + 1 > size) {
            return 0;
        }
        memcpy(buf, text, n_text + 1);
        return n_text;
    }
    if (sa->sa_family != AF_INET6 || len < 24) {
        return 0;
    }
    const struct sockaddr_in6* in6 = (const struct sockaddr_in6*)(const void*)sa;
    if (!inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text)) {
        return 0;
    }
    const size_t n_text = strlen(text);
    if (n_text + 3 > size) {
        return 0;
    }
    buf[0] = '[';
    memcpy(buf + 1, text, n_text);
    buf[n_text + 1] = ']';
    buf[n_text + 2] = '\0';
    return n_text + 2;
}

uint16_t lj_port_of(const struct sockaddr* sa, socklen_t len) {
    if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        return ntohs(((const struct sockaddr_in*)(const void*)sa)->sin_port);
    }
    if (sa->sa_family == AF_INET6 && len >= 24) {
        return ntohs(((const struct sockaddr_in6*)(const void*)sa)->sin6_port);
    }
    return 0;
}

int lj_is_loopback(const struct sockaddr* sa, socklen_t len) {
    uint32_t v4;
    if (lj_v4_of(sa, len, &v4)) {
        return (v4 >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6 && len >= 24) {
        return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6*)(const void*)sa)->sin6_addr);
    }
    return 0;
}

int lj_same_endpoint(const struct sockaddr* a, socklen_t alen, const struct sockaddr* b,
                     socklen_t blen) {
    if (lj_port_of(a, alen) != lj_port_of(b, blen) || lj_port_of(a, alen) == 0) {
        return 0;
    }
    uint32_t va, vb;
    const int a4 = lj_v4_of(a, alen, &va), b4 = lj_v4_of(b, blen, &vb);
    if (a4 || b4) {
        return a4 && b4 && va == vb;
    }
    const struct sockaddr_in6* x = (const struct sockaddr_in6*)(const void*)a;
    const struct sockaddr_in6* y = (const struct sockaddr_in6*)(const void*)b;
    return memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
}

int lj_parse_proxy_url(const char* url, struct sockaddr_storage* out, socklen_t* out_len) {
    static const char kScheme[] = "http://";
    if (!url || strncmp(url, kScheme, sizeof kScheme - 1) != 0) {
        return -1;
    }
    const char* host = url + sizeof kScheme - 1;
    const char* port_at;
    char text[INET6_ADDRSTRLEN + 1];
    size_t n;
    if (*host == '[') {
        const char* close = strchr(host, ']');
        if (!close || close[1] != ':') {
            return -1;
        }
        n = (size_t)(close - host - 1);
        host++;
        port_at = close + 2;
    } else {
        const char* colon = strchr(host, ':');
        if (!colon) {
            return -1;
        }
        n = (size_t)(colon - host);
        port_at = colon + 1;
    }
    if (n == 0 || n >= sizeof text) {
        return -1;
    }
    memcpy(text, host, n);
    text[n] = '\0';
    unsigned long port = 0;
    const char* p = port_at;
    for (; *p >= '0' && *p <= '9' && port <= 65535; p++) {
        port = port * 10 + (unsigned long)(*p - '0');
    }
    if (p == port_at || port == 0 || port > 65535 ||
        !(*p == '\0' || (p[0] == '/' && p[1] == '\0'))) {
        return -1;
    }
    memset(out, 0, sizeof *out);
    struct sockaddr_in* in = (struct sockaddr_in*)(void*)out;
    struct sockaddr_in6* in6 = (struct sockaddr_in6*)(void*)out;
    const int bracketed = host[-1] == '[';
    if (!bracketed && inet_pton(AF_INET, text, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)port);
        *out_len = sizeof *in;
        return 0;
    }
    if (bracketed && inet_pton(AF_INET6, text, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        *out_len = sizeof *in6;
        return 0;
    }
    return -1;
}

/* Appends s to buf at *at; 0 when it does not fit. */
static int lj_append(char* buf, size_t size, size_t* at, const char* s, size_t n) {
    if (*at + n >= size) {
        return 0;
    }
    memcpy(buf + *at, s, n);
    *at += n;
    buf[*at] = '\0';
    return 1;
}

size_t lj_format_port(char* out, uint16_t v) {
    char tmp[6];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v = (uint16_t)(v / 10);
    } while (v);
    for (size_t i = 0; i < n; i++) {
        out[i] = tmp[n - 1 - i];
    }
    out[n] = '\0';
    return n;
}

size_t lj_format_connect(char* buf, size_t size, const char* host, uint16_t port) {
    if (!host || !*host) {
        return 0;
    }
    for (const char* c = host; *c; c++) {
        if (*c == '\r' || *c == '\n' || *c == ' ' || *c == '\t') {
            return 0; /* would break the request line */
        }
    }
    char port_text[6];
    const size_t port_len = lj_format_port(port_text, port);
    const size_t host_len = strlen(host);
    size_t at = 0;
    const int ok = lj_append(buf, size, &at, "CONNECT ", 8) &&
                   lj_append(buf, size, &at, host, host_len) && lj_append(buf, size, &at, ":", 1) &&
                   lj_append(buf, size, &at, port_text, port_len) &&
                   lj_append(buf, size, &at, " HTTP/1.1\r\nHost: ", 17) &&
                   lj_append(buf, size, &at, host, host_len) && lj_append(buf, size, &at, ":", 1) &&
                   lj_append(buf, size, &at, port_text, port_len) &&
                   lj_append(buf, size, &at, "\r\n" LJ_RAW_TUNNEL_FIELD "\r\n\r\n",
                             sizeof("\r\n" LJ_RAW_TUNNEL_FIELD "\r\n\r\n") - 1);
    return ok ? at : 0;
}

int lj_parse_connect_reply(const char* buf, size_t len, int* status, size_t* header_len) {
    static const char kVersion[] = "HTTP/1.";
    const size_t need = sizeof kVersion - 1;
    if (memcmp(buf, kVersion, len < need ? len : need) != 0) {
        return -1;
    }
    if (len < need + 6) {
        return 0;
    }
    if ((buf[need] != '0' && buf[need] != '1') || buf[need + 1] != ' ' || buf[need + 2] < '1' ||
        buf[need + 2] > '5' || buf[need + 3] < '0' || buf[need + 3] > '9' || buf[need + 4] < '0' ||
        buf[need + 4] > '9' || (buf[need + 5] != ' ' && buf[need + 5] != '\r')) {
        return -1;
    }
    for (size_t i = 3; i < len; i++) {
        if (buf[i - 3] == '\r' && buf[i - 2] == '\n' && buf[i - 1] == '\r' && buf[i] == '\n') {
            *status =
                (buf[need + 2] - '0') * 100 + (buf[need + 3] - '0') * 10 + (buf[need + 4] - '0');
            *header_len = i + 1;
            return 1;
        }
    }
    return 0;
}

size_t lj_reply_reason(const char* buf, size_t len, char* out, size_t size) {
    /* "HTTP/1.1 403 Forbidden\r\n": the reason starts after the status code and a space. */
    size_t i = 13, n = 0;
    if (size == 0) {
        return 0;
    }
    while (i < len && buf[i] != '\r' && buf[i] != '\n' && n + 1 < size) {
        out[n++] = buf[i++];
    }
    out[n] = '\0';
    return n;
}
