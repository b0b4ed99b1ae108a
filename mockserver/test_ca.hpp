// A throw-away certificate authority generated in memory (OpenSSL 3, EC
// P-256), so tests and the mock server get real, verifiable TLS without any
// key material on disk or in the repository.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

typedef struct evp_pkey_st EVP_PKEY;
typedef struct x509_st X509;

namespace barrage::mock {

// PEM texts of one issued leaf: the CA that signed it, the leaf certificate
// and the leaf's unencrypted PKCS#8 private key.
struct CertBundle {
  std::string ca_pem;
  std::string cert_pem;
  std::string key_pem;
  bool ok() const { return !cert_pem.empty() && !key_pem.empty(); }
};

// A self-signed CA (basicConstraints CA:TRUE critical, keyUsage keyCertSign)
// that can issue server leaves. Move-only; copies would share the key.
// Thread-safe for concurrent const calls (OpenSSL 3 objects are read-only
// during signing).
class TestCa {
 public:
  // Generates the CA key and certificate (CN "barrage test CA", valid
  // now-1h .. now+30d). On failure the result is !valid() and *err (when
  // non-null) says why.
  static TestCa create(std::string* err);

  // Issues a leaf with the given subjectAltNames, each "DNS:name" or
  // "IP:addr" (for example {"DNS:localhost", "IP:127.0.0.1", "IP:::1"}),
  // extendedKeyUsage serverAuth, valid now-1h .. now+30d. Returns a bundle
  // with empty cert_pem on failure.
  CertBundle issue(const std::vector<std::string>& sans, std::string* err) const;

  // The same with explicit validity, in seconds relative to now (negative is
  // the past): an expired leaf is issue(sans, err, -7200, -3600).
  CertBundle issue(const std::vector<std::string>& sans, std::string* err,
                   int64_t not_before_s, int64_t not_after_s) const;

  std::string ca_pem() const;
  bool valid() const { return key_ != nullptr && cert_ != nullptr; }

  TestCa() = default;
  TestCa(TestCa&&) noexcept = default;
  TestCa& operator=(TestCa&&) noexcept = default;

 private:
  struct KeyFree { void operator()(EVP_PKEY* k) const; };
  struct CertFree { void operator()(X509* c) const; };
  std::unique_ptr<EVP_PKEY, KeyFree> key_;
  std::unique_ptr<X509, CertFree> cert_;
};

// Localhost leaf from a fresh CA in one call: SANs localhost, 127.0.0.1, ::1.
CertBundle make_localhost_bundle(std::string* err);

// Writes data to path (truncating). Returns false on any I/O error.
bool write_file(const std::string& path, const std::string& data);

}  // namespace barrage::mock
