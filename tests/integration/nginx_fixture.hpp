// nginx from Debian as an independent peer for C++ integration tests:
// tests/nginx/nginx_peer.py starts it in a throw-away prefix (test CA, leaf
// for localhost/127.0.0.1) and writes peer.env, which this reads.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

namespace barrage::testing {

class NginxPeer {
 public:
  // args: extra nginx_peer.py `up` arguments, e.g. "--h2 --h2-streams 10".
  explicit NginxPeer(const std::string& args) {
    char tmpl[] = "/tmp/barrage-nginx-XXXXXX";
    if (!mkdtemp(tmpl)) return;
    dir_ = tmpl;
    std::string cmd = "python3 " NGINX_PEER_PY " up " + dir_ + " " + args + " 2>/dev/null";
    status_ = std::system(cmd.c_str());
    if (status_ != 0) return;
    std::ifstream env(dir_ + "/peer.env");
    std::string line;
    while (std::getline(env, line)) {
      size_t eq = line.find('=');
      if (eq != std::string::npos) vars_[line.substr(0, eq)] = line.substr(eq + 1);
    }
    std::ifstream body(dir_ + "/body.json", std::ios::binary);
    std::stringstream ss;
    ss << body.rdbuf();
    body_ = ss.str();
  }
  ~NginxPeer() {
    if (!dir_.empty()) {
      std::string cmd = "python3 " NGINX_PEER_PY " down " + dir_;
      [[maybe_unused]] int rc = std::system(cmd.c_str());
    }
  }
  NginxPeer(const NginxPeer&) = delete;
  NginxPeer& operator=(const NginxPeer&) = delete;

  // Exit status 77 from nginx_peer.py: nginx is not installed.
  bool missing() const { return WIFEXITED(status_) && WEXITSTATUS(status_) == 77; }
  bool ok() const { return status_ == 0 && vars_.count("PORT"); }
  std::string url(const std::string& path = "/") const { return "https://127.0.0.1:" + vars_.at("PORT") + path; }
  std::string ca() const { return vars_.at("CA"); }
  // The exact bytes nginx answers on "/".
  const std::string& body() const { return body_; }

 private:
  std::string dir_;
  int status_ = -1;
  std::map<std::string, std::string> vars_;
  std::string body_;
};

}  // namespace barrage::testing
