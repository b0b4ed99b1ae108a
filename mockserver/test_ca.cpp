// In-memory CA and leaf issuance for tests and the mock server (see
// test_ca.hpp). Built on OpenSSL 3's EVP_EC_gen and the X509 builder calls.
#include "test_ca.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>

namespace barrage::mock {
namespace {

constexpr int64_t kHour = 3600;
constexpr int64_t kDay = 24 * kHour;

void set_err(std::string* err, const std::string& what) {
  if (err == nullptr) return;
  *err = what;
  // Append OpenSSL's own reason: "EC key generation failed" alone does not
  // tell a missing provider from a bad curve name.
  unsigned long code = ERR_get_error();
  if (code != 0) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof buf);
    *err += ": ";
    *err += buf;
  }
  ERR_clear_error();
}

std::string bio_to_string(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  return len > 0 ? std::string(data, static_cast<size_t>(len)) : std::string();
}

std::string cert_to_pem(X509* cert) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (bio == nullptr) return {};
  std::string out;
  if (PEM_write_bio_X509(bio, cert) == 1) out = bio_to_string(bio);
  BIO_free(bio);
  return out;
}

std::string key_to_pem(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (bio == nullptr) return {};
  std::string out;
  if (PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr) == 1) {
    out = bio_to_string(bio);
  }
  BIO_free(bio);
  return out;
}

// Random positive 127-bit serial: unique enough that a client's session
// cache never confuses two test leaves.
bool set_random_serial(X509* cert) {
  BIGNUM* bn = BN_new();
  if (bn == nullptr) return false;
  bool ok = BN_rand(bn, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) == 1 &&
            BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) != nullptr;
  BN_free(bn);
  return ok;
}

bool add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_nconf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) return false;
  bool ok = X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return ok;
}

bool set_name(X509_NAME* name, const char* cn) {
  return X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                                    reinterpret_cast<const unsigned char*>("barrage tests"), -1,
                                    -1, 0) == 1 &&
         X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                    reinterpret_cast<const unsigned char*>(cn), -1, -1, 0) == 1;
}

// Fills the fields every certificate here shares: v3, serial, validity,
// subject CN and public key.
bool init_cert(X509* cert, EVP_PKEY* key, const char* cn, int64_t not_before_s,
               int64_t not_after_s) {
  return X509_set_version(cert, 2) == 1 && set_random_serial(cert) &&
         X509_gmtime_adj(X509_getm_notBefore(cert), static_cast<long>(not_before_s)) !=
             nullptr &&
         X509_gmtime_adj(X509_getm_notAfter(cert), static_cast<long>(not_after_s)) != nullptr &&
         set_name(X509_get_subject_name(cert), cn) && X509_set_pubkey(cert, key) == 1;
}

}  // namespace

void TestCa::KeyFree::operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
void TestCa::CertFree::operator()(X509* c) const { X509_free(c); }

TestCa TestCa::create(std::string* err) {
  TestCa ca;
  std::unique_ptr<EVP_PKEY, KeyFree> key(EVP_EC_gen("P-256"));
  if (!key) {
    set_err(err, "EC P-256 key generation failed");
    return ca;
  }
  std::unique_ptr<X509, CertFree> cert(X509_new());
  if (!cert || !init_cert(cert.get(), key.get(), "barrage test CA", -kHour, 30 * kDay) ||
      X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get())) != 1 ||
      !add_ext(cert.get(), cert.get(), NID_basic_constraints, "critical,CA:TRUE") ||
      !add_ext(cert.get(), cert.get(), NID_key_usage, "critical,keyCertSign,cRLSign") ||
      !add_ext(cert.get(), cert.get(), NID_subject_key_identifier, "hash") ||
      !add_ext(cert.get(), cert.get(), NID_authority_key_identifier, "keyid:always") ||
      X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) {
    set_err(err, "building the CA certificate failed");
    return ca;
  }
  ca.key_ = std::move(key);
  ca.cert_ = std::move(cert);
  return ca;
}

CertBundle TestCa::issue(const std::vector<std::string>& sans, std::string* err) const {
  return issue(sans, err, -kHour, 30 * kDay);
}

CertBundle TestCa::issue(const std::vector<std::string>& sans, std::string* err,
                         int64_t not_before_s, int64_t not_after_s) const {
  CertBundle out;
  if (!valid()) {
    set_err(err, "TestCa is not initialised");
    return out;
  }
  if (sans.empty()) {
    set_err(err, "a leaf needs at least one subjectAltName");
    return out;
  }
  std::string san_list;
  for (const std::string& s : sans) {
    if (s.rfind("DNS:", 0) != 0 && s.rfind("IP:", 0) != 0) {
      set_err(err, "subjectAltName must start with DNS: or IP: (got \"" + s + "\")");
      return out;
    }
    if (!san_list.empty()) san_list += ',';
    san_list += s;
  }
  // The CN is informational only (clients match the SANs), but a readable
  // one makes `openssl x509 -text` output easy to tell apart.
  std::string cn = sans.front().substr(sans.front().find(':') + 1);

  std::unique_ptr<EVP_PKEY, KeyFree> key(EVP_EC_gen("P-256"));
  if (!key) {
    set_err(err, "EC P-256 key generation failed");
    return out;
  }
  std::unique_ptr<X509, CertFree> cert(X509_new());
  if (!cert || !init_cert(cert.get(), key.get(), cn.c_str(), not_before_s, not_after_s) ||
      X509_set_issuer_name(cert.get(), X509_get_subject_name(cert_.get())) != 1 ||
      !add_ext(cert.get(), cert_.get(), NID_basic_constraints, "critical,CA:FALSE") ||
      !add_ext(cert.get(), cert_.get(), NID_key_usage, "critical,digitalSignature") ||
      !add_ext(cert.get(), cert_.get(), NID_ext_key_usage, "serverAuth") ||
      !add_ext(cert.get(), cert_.get(), NID_subject_key_identifier, "hash") ||
      !add_ext(cert.get(), cert_.get(), NID_authority_key_identifier, "keyid:always") ||
      !add_ext(cert.get(), cert_.get(), NID_subject_alt_name, san_list) ||
      X509_sign(cert.get(), key_.get(), EVP_sha256()) == 0) {
    set_err(err, "building the leaf certificate failed (SANs: " + san_list + ")");
    return out;
  }
  out.ca_pem = ca_pem();
  out.cert_pem = cert_to_pem(cert.get());
  out.key_pem = key_to_pem(key.get());
  if (!out.ok()) {
    set_err(err, "PEM encoding failed");
    out = CertBundle{};
  }
  return out;
}

std::string TestCa::ca_pem() const { return cert_ ? cert_to_pem(cert_.get()) : std::string(); }

CertBundle make_localhost_bundle(std::string* err) {
  TestCa ca = TestCa::create(err);
  if (!ca.valid()) return {};
  return ca.issue({"DNS:localhost", "IP:127.0.0.1", "IP:::1"}, err);
}

bool write_file(const std::string& path, const std::string& data) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return false;
  bool ok = std::fwrite(data.data(), 1, data.size(), f) == data.size();
  ok = (std::fclose(f) == 0) && ok;
  return ok;
}

}  // namespace barrage::mock
