// SPDX-License-Identifier: Apache-2.0
// The local CA's directory on disk (ca_internal.hpp): creating it, the flock on `ca.lock`,
// reading ca.pem and ca-key.pem (the key's mode is checked first), and writing a new pair,
// each file atomically, so that a crash never leaves half a file.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <mbedtls/pem.h>
#include <mbedtls/platform_util.h>

#include "proxy/tls/ca_internal.hpp"

namespace lj::proxy::ca_detail {

namespace {

constexpr const char* kLockFile = "ca.lock";
constexpr std::size_t kKeyPemMax = 1024;     // a P-256 key PEM is ~230 bytes
constexpr off_t kMaxFileSize = 1024 * 1024;  // a CA file is a few KiB
constexpr mode_t kKeyMode = 0600;
constexpr mode_t kCertMode = 0644;

/// Wipes a string holding key material when it goes out of scope.
class Wipe {
  public:
    explicit Wipe(std::string& s) : s_(s) {}
    ~Wipe() { mbedtls_platform_zeroize(s_.data(), s_.size()); }
    Wipe(const Wipe&) = delete;
    Wipe& operator=(const Wipe&) = delete;

  private:
    std::string& s_;
};

// ---- files -------------------------------------------------------------------------------

Result<UniqueFd> open_read(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) {
        return errno_fail(path, "open");
    }
    return fd;
}

/// Reads the whole file behind `fd` into a string allocated once (so key material is not
/// left behind in reallocated buffers). Files over 1 MiB are refused.
Result<std::string> read_all(int fd, const std::string& path) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        return errno_fail(path, "stat");
    }
    if (!S_ISREG(st.st_mode) || st.st_size > kMaxFileSize) {
        return fail(path, "read", "not a regular file of at most 1 MiB");
    }
    std::string out(static_cast<std::size_t>(st.st_size), '\0');
    std::size_t got = 0;
    while (got < out.size()) {
        const ssize_t n = ::read(fd, out.data() + got, out.size() - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return errno_fail(path, "read");
        }
        if (n == 0) {
            break;
        }
        got += static_cast<std::size_t>(n);
    }
    out.resize(got);
    return out;
}

Status write_all(int fd, const std::string& path, std::string_view data) {
    while (!data.empty()) {
        const ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return errno_fail(path, "write");
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return ok();
}

/// Gives the temporary file its final mode, writes it and flushes it to disk.
Status fill_temp(int fd, const std::string& tmp, std::string_view data, mode_t mode) {
    if (::fchmod(fd, mode) != 0) {
        return errno_fail(tmp, "chmod");
    }
    if (auto st = write_all(fd, tmp, data); !st) {
        return st;
    }
    if (::fsync(fd) != 0) {
        return errno_fail(tmp, "fsync");
    }
    return ok();
}

/// Replaces `path` atomically with `data`: a temporary file in the same directory, created
/// with O_CREAT|O_EXCL and mode 0600 (mkostemp, so key material is never readable by
/// others, even briefly), chmod'ed to `mode`, written, fsync'ed and renamed over `path`. A
/// crash leaves the old file or the new one, never half a file.
Status write_atomic(const CaFiles& files, const std::string& path, std::string_view data,
                    mode_t mode) {
    const std::size_t slash = path.rfind('/');
    std::string tmp = files.dir + "/." + path.substr(slash + 1) + ".XXXXXX";
    UniqueFd fd(::mkostemp(tmp.data(), O_CLOEXEC));
    if (!fd.valid()) {
        return errno_fail(files.dir, "create " + path.substr(slash + 1));
    }
    Status st = fill_temp(fd.get(), tmp, data, mode);
    if (st.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
        const int err = errno;
        st = errno_fail(path, "rename " + tmp, err);
    }
    if (!st.ok()) {
        ::unlink(tmp.c_str());
    }
    return st;
}

/// Makes the renames durable.
Status sync_dir(const std::string& dir) {
    UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd.valid() || ::fsync(fd.get()) != 0) {
        return errno_fail(dir, "fsync directory");
    }
    return ok();
}

// ---- the key's mode and PEM --------------------------------------------------------------

/// The private key file must not be readable by group or others: fixed to 0600 when we
/// own it, else an error.
Status check_key_mode(int fd, const std::string& path) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        return errno_fail(path, "stat");
    }
    if ((st.st_mode & (S_IRWXG | S_IRWXO)) == 0) {
        return ok();
    }
    std::array<char, 8> mode{};
    std::snprintf(mode.data(), mode.size(), "%04o", st.st_mode & 07777U);
    if (st.st_uid != ::geteuid()) {
        return fail(path, "check mode",
                    std::string("mode ") + mode.data() +
                        " lets other users read the CA key, and it belongs to another user, so "
                        "landjail cannot fix it: its owner must run chmod 600 " +
                        path + std::string(kHintOwn).replace(0, 1, ", or"));
    }
    if (::fchmod(fd, kKeyMode) != 0) {
        const int err = errno;
        return errno_fail(path, std::string("chmod 0600 (was ") + mode.data() + ")", err);
    }
    return ok();
}

/// A certificate's DER as PEM text.
Result<std::string> der_to_pem(const std::vector<unsigned char>& der) {
    std::vector<unsigned char> buf(der.size() * 2 + 128);
    std::size_t len = 0;
    const int rc =
        mbedtls_pem_write_buffer("-----BEGIN CERTIFICATE-----\n", "-----END CERTIFICATE-----\n",
                                 der.data(), der.size(), buf.data(), buf.size(), &len);
    if (rc != 0) {
        return fail("certificate", "encode PEM", mbed_text(rc));
    }
    return std::string(reinterpret_cast<const char*>(buf.data()));
}

/// The PEM text of the private key (to be wiped by the caller).
Result<std::string> key_to_pem(mbedtls_pk_context* key) {
    std::string pem(kKeyPemMax, '\0');
    const int rc =
        mbedtls_pk_write_key_pem(key, reinterpret_cast<unsigned char*>(pem.data()), pem.size());
    if (rc != 0) {
        mbedtls_platform_zeroize(pem.data(), pem.size());
        return fail("CA key", "encode PEM", mbed_text(rc));
    }
    pem.resize(pem.find('\0'));
    return pem;
}

}  // namespace

// ---- the CA directory --------------------------------------------------------------------

Status make_dirs(const std::string& dir) {
    std::size_t end = 0;
    while (end != std::string::npos) {
        end = dir.find('/', end + 1);
        const std::string part = dir.substr(0, end);
        if (!part.empty() && part.back() != '/' && ::mkdir(part.c_str(), 0700) != 0 &&
            errno != EEXIST) {
            const int err = errno;
            return fail(dir, "create CA directory",
                        (part == dir ? "" : part + ": ") + std::generic_category().message(err) +
                            kHintWritable);
        }
    }
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0) {
        return errno_fail(dir, "stat CA directory");
    }
    if (!S_ISDIR(st.st_mode)) {
        return fail(dir, "create CA directory",
                    "exists and is not a directory; give --ca-dir a directory");
    }
    return ok();
}

Result<bool> exists(const std::string& path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) {
        return true;
    }
    const int err = errno;
    if (err == ENOENT) {
        return false;
    }
    return errno_fail(path, "stat", err);
}

Result<UniqueFd> lock_dir(const std::string& dir) {
    const std::string path = dir + "/" + kLockFile;
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC, kKeyMode));
    if (!fd.valid()) {
        const int err = errno;
        if (err == EACCES || err == EROFS) {
            return UniqueFd();
        }
        return errno_fail(path, "open lock file", err);
    }
    while (::flock(fd.get(), LOCK_EX) != 0) {
        const int err = errno;
        if (err != EINTR) {
            return errno_fail(path, "flock", err);
        }
    }
    return fd;
}

// ---- the CA pair -------------------------------------------------------------------------

Status load_cert(const std::string& path, mbedtls_x509_crt* cert, std::string& pem) {
    auto fd = open_read(path);
    if (!fd) {
        return with_hint(fd.error(), kHintOwn);
    }
    auto text = read_all(fd->get(), path);
    if (!text) {
        return with_hint(text.error(), kHintRecreate);
    }
    const int rc = mbedtls_x509_crt_parse(cert, bytes(*text), text->size() + 1);
    if (rc != 0) {
        return fail(
            path, "parse certificate",
            (rc < 0 ? mbed_text(rc) : std::to_string(rc) + " certificate(s) did not parse") +
                kHintRecreate);
    }
    if (cert->ca_istrue == 0 ||
        mbedtls_x509_crt_check_key_usage(cert, MBEDTLS_X509_KU_KEY_CERT_SIGN) != 0) {
        return fail(path, "check certificate",
                    std::string("not a CA certificate (needs basicConstraints CA:TRUE and "
                                "keyCertSign)") +
                        kHintRecreate);
    }
    pem = std::move(*text);
    return ok();
}

Status load_key(const std::string& path, mbedtls_pk_context* key) {
    auto fd = open_read(path);
    if (!fd) {
        return with_hint(fd.error(), kHintOwn);
    }
    if (auto st = check_key_mode(fd->get(), path); !st) {
        return st;
    }
    auto text = read_all(fd->get(), path);
    if (!text) {
        return text.error();
    }
    Wipe wipe(*text);
    const int rc = mbedtls_pk_parse_key(key, bytes(*text), text->size() + 1, nullptr, 0);
    if (rc != 0) {
        return fail(path, "parse private key", mbed_text(rc) + kHintRecreate);
    }
    return ok();
}

Status write_pair(const CaFiles& files, mbedtls_pk_context* key,
                  const std::vector<unsigned char>& der, std::string& cert_pem) {
    auto key_pem = key_to_pem(key);
    if (!key_pem) {
        return key_pem.error();
    }
    Wipe wipe(*key_pem);
    auto pem = der_to_pem(der);
    if (!pem) {
        return pem.error();
    }
    if (auto st = write_atomic(files, files.key, *key_pem, kKeyMode); !st) {
        return st;
    }
    if (auto st = write_atomic(files, files.cert, *pem, kCertMode); !st) {
        return st;
    }
    cert_pem = std::move(*pem);
    return sync_dir(files.dir);
}

}  // namespace lj::proxy::ca_detail
