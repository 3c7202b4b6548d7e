// SPDX-License-Identifier: Apache-2.0
// The escape program's cases over raw and packet sockets: hand-made IPv4 and IPv6 UDP
// datagrams, ICMP echo (raw and ping sockets) and an AF_PACKET frame on lo
// (tests/e2e/test_escape.py).
#include <errno.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/ip6.h>
#include <netinet/ip_icmp.h>
#include <netinet/udp.h>
#include <netpacket/packet.h>
#include <stdlib.h>
#include <sys/un.h>

#include "escape.h"

// ---- raw and packet sockets ----------------------------------------------------------------

static uint16_t inet_checksum(const void* data, size_t len) {
    const uint8_t* p = data;
    uint32_t sum = 0;
    for (size_t i = 0; i + 1 < len; i += 2) {
        sum += (uint32_t)(p[i] << 8 | p[i + 1]);
    }
    if (len & 1) {
        sum += (uint32_t)(p[len - 1] << 8);
    }
    while (sum >> 16) {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    return htons((uint16_t)~sum);
}

// Builds IPv4 + UDP (checksum 0: none, valid for IPv4) + marker towards a; returns its length.
static size_t build_ip_udp(uint8_t* buf, size_t cap, const Addr* a) {
    const struct sockaddr_in* dst = (const struct sockaddr_in*)&a->ss;
    const size_t payload = marker_len();
    const size_t total = sizeof(struct iphdr) + sizeof(struct udphdr) + payload;
    if (total > cap) {
        exit(2);
    }
    memset(buf, 0, total);
    struct iphdr* ip = (struct iphdr*)buf;
    ip->version = 4;
    ip->ihl = 5;
    ip->tot_len = htons((uint16_t)total);
    ip->id = htons(0x4a4c);
    ip->ttl = 64;
    ip->protocol = IPPROTO_UDP;
    ip->saddr = htonl(INADDR_LOOPBACK);
    ip->daddr = dst->sin_addr.s_addr;
    ip->check = inet_checksum(ip, sizeof *ip);
    struct udphdr* udp = (struct udphdr*)(buf + sizeof *ip);
    udp->source = htons(40000);
    udp->dest = dst->sin_port;
    udp->len = htons((uint16_t)(sizeof *udp + payload));
    memcpy(buf + sizeof *ip + sizeof *udp, g_marker, payload);
    return total;
}

// SOCK_RAW/IPPROTO_RAW (IP_HDRINCL): a hand-made IPv4/UDP datagram to the UDP listener.
int case_raw(const Addr* a) {
    if (a->family != AF_INET) {
        return fail_err("raw: IPv4 only", EINVAL);
    }
    const int fd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
    if (fd < 0) {
        return fail("socket(SOCK_RAW, IPPROTO_RAW)");
    }
    uint8_t pkt[256];
    const size_t n = build_ip_udp(pkt, sizeof pkt, a);
    if (sendto(fd, pkt, n, 0, (const struct sockaddr*)&a->ss, a->len) < 0) {
        return fail("sendto");
    }
    return sent("raw IPv4/UDP");
}

// SOCK_RAW AF_INET6/IPPROTO_UDP: a hand-made UDP header; the kernel adds the IPv6 header and
// computes the checksum (IPV6_CHECKSUM).
int case_raw6(const Addr* a) {
    if (a->family != AF_INET6) {
        return fail_err("raw6: IPv6 only", EINVAL);
    }
    const int fd = socket(AF_INET6, SOCK_RAW, IPPROTO_UDP);
    if (fd < 0) {
        return fail("socket(AF_INET6, SOCK_RAW, IPPROTO_UDP)");
    }
    const int off = 6;  // offsetof(struct udphdr, check)
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_CHECKSUM, &off, sizeof off) < 0) {
        return fail("setsockopt(IPV6_CHECKSUM)");
    }
    uint8_t pkt[256];
    const size_t payload = marker_len();
    struct udphdr* udp = (struct udphdr*)pkt;
    memset(udp, 0, sizeof *udp);
    udp->source = htons(40000);
    udp->dest = ((const struct sockaddr_in6*)&a->ss)->sin6_port;
    udp->len = htons((uint16_t)(sizeof *udp + payload));
    memcpy(pkt + sizeof *udp, g_marker, payload);
    struct sockaddr_in6 dst = *(const struct sockaddr_in6*)&a->ss;
    dst.sin6_port = 0;  // for raw IPv6 sockets the port field is the protocol (0: the socket's)
    if (sendto(fd, pkt, sizeof *udp + payload, 0, (const struct sockaddr*)&dst, sizeof dst) < 0) {
        return fail("sendto");
    }
    return sent("raw IPv6/UDP");
}

static size_t build_icmp_echo(uint8_t* buf, size_t cap) {
    const size_t total = sizeof(struct icmphdr) + marker_len();
    if (total > cap) {
        exit(2);
    }
    memset(buf, 0, total);
    struct icmphdr* h = (struct icmphdr*)buf;
    h->type = ICMP_ECHO;
    h->un.echo.id = htons(0x4a4c);
    h->un.echo.sequence = htons(1);
    memcpy(buf + sizeof *h, g_marker, marker_len());
    h->checksum = inet_checksum(buf, total);
    return total;
}

static int icmp_with_type(const Addr* a, int type, const char* what) {
    if (a->family != AF_INET) {
        return fail_err("icmp: IPv4 only", EINVAL);
    }
    const int fd = socket(AF_INET, type, IPPROTO_ICMP);
    if (fd < 0) {
        return fail(type == SOCK_RAW ? "socket(SOCK_RAW, IPPROTO_ICMP)"
                                     : "socket(SOCK_DGRAM, IPPROTO_ICMP)");
    }
    uint8_t pkt[256];
    const size_t n = build_icmp_echo(pkt, sizeof pkt);
    if (sendto(fd, pkt, n, 0, (const struct sockaddr*)&a->ss, a->len) < 0) {
        return fail("sendto");
    }
    return sent(what);
}

int case_raw_icmp(const Addr* a) {
    return icmp_with_type(a, SOCK_RAW, "raw ICMP echo");
}
int case_ping(const Addr* a) {
    return icmp_with_type(a, SOCK_DGRAM, "ping-socket echo");
}

// Builds IPv6 + UDP (checksum over the pseudo-header: mandatory in IPv6) + marker from ::1
// towards a; returns its length.
static size_t build_ip6_udp(uint8_t* buf, size_t cap, const Addr* a) {
    const struct sockaddr_in6* dst = (const struct sockaddr_in6*)&a->ss;
    const size_t payload = marker_len();
    const size_t udp_len = sizeof(struct udphdr) + payload;
    const size_t total = sizeof(struct ip6_hdr) + udp_len;
    if (total > cap) {
        exit(2);
    }
    memset(buf, 0, total);
    struct ip6_hdr* ip6 = (struct ip6_hdr*)buf;
    ip6->ip6_flow = htonl(6u << 28);
    ip6->ip6_plen = htons((uint16_t)udp_len);
    ip6->ip6_nxt = IPPROTO_UDP;
    ip6->ip6_hlim = 64;
    ip6->ip6_src = in6addr_loopback;
    ip6->ip6_dst = dst->sin6_addr;
    struct udphdr* udp = (struct udphdr*)(buf + sizeof *ip6);
    udp->source = htons(40000);
    udp->dest = dst->sin6_port;
    udp->len = htons((uint16_t)udp_len);
    memcpy(buf + sizeof *ip6 + sizeof *udp, g_marker, payload);
    // Pseudo-header (RFC 8200 8.1): source, destination, length, next header; then UDP.
    uint8_t pseudo[40 + 256];
    if (udp_len > 256) {
        exit(2);
    }
    memset(pseudo, 0, 40);
    memcpy(pseudo, &ip6->ip6_src, 16);
    memcpy(pseudo + 16, &ip6->ip6_dst, 16);
    const uint32_t len_be = htonl((uint32_t)udp_len);
    memcpy(pseudo + 32, &len_be, 4);
    pseudo[39] = IPPROTO_UDP;
    memcpy(pseudo + 40, udp, udp_len);
    udp->check = inet_checksum(pseudo, 40 + udp_len);
    if (udp->check == 0) {
        udp->check = 0xffff;
    }
    return total;
}

// AF_PACKET on lo: a whole Ethernet frame (lo's address is all zeros) carrying IPv6/UDP to
// ::1, which lo loops back into the stack and the UDP listener receives. (IPv4 is not used:
// a frame to 127.0.0.0/8 coming in without a route is a martian unless route_localnet is set.)
int case_packet(const Addr* a) {
    if (a->family != AF_INET6) {
        return fail_err("packet: IPv6 only", EINVAL);
    }
    const int fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_IPV6));
    if (fd < 0) {
        return fail("socket(AF_PACKET, SOCK_RAW)");
    }
    const unsigned ifindex = if_nametoindex("lo");
    if (ifindex == 0) {
        return fail("if_nametoindex(lo)");
    }
    uint8_t frame[512];
    struct ether_header* eth = (struct ether_header*)frame;
    memset(eth, 0, sizeof *eth);
    eth->ether_type = htons(ETHERTYPE_IPV6);
    const size_t n = build_ip6_udp(frame + sizeof *eth, sizeof frame - sizeof *eth, a);
    struct sockaddr_ll ll;
    memset(&ll, 0, sizeof ll);
    ll.sll_family = AF_PACKET;
    ll.sll_protocol = htons(ETH_P_IPV6);
    ll.sll_ifindex = (int)ifindex;
    ll.sll_halen = ETH_ALEN;
    if (sendto(fd, frame, sizeof *eth + n, 0, (const struct sockaddr*)&ll, sizeof ll) < 0) {
        return fail("sendto");
    }
    return sent("AF_PACKET frame on lo");
}
