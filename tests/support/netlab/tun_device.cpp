// TUN devices and their addresses through ioctls (no `ip` needed).
#include "tun_device.hpp"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

namespace barrage::netlab {
namespace {

std::string errno_text(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

ifreq named(const std::string& name) {
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  return ifr;
}

void set_ipv4(sockaddr* sa, in_addr a) {
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr = a;
  std::memcpy(sa, &sin, sizeof sin);
}

bool set_up(int s, const std::string& name, std::string* err) {
  ifreq ifr = named(name);
  if (ioctl(s, SIOCGIFFLAGS, &ifr) != 0) return *err = errno_text(("SIOCGIFFLAGS " + name).c_str()), false;
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0) return *err = errno_text(("SIOCSIFFLAGS " + name).c_str()), false;
  return true;
}

}  // namespace

int open_tun(const std::string& name, std::string* err) {
  if (name.empty() || name.size() >= IFNAMSIZ) {
    *err = "interface name must have 1 to 15 characters: " + name;
    return -1;
  }
  const int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    *err = errno_text("/dev/net/tun");
    return -1;
  }
  ifreq ifr = named(name);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  if (ioctl(fd, TUNSETIFF, &ifr) != 0) {
    *err = errno_text(("TUNSETIFF " + name).c_str());
    close(fd);
    return -1;
  }
  return fd;
}

bool configure_point_to_point(const std::string& name, in_addr local, in_addr peer, int mtu, std::string* err) {
  const int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return *err = errno_text("socket"), false;
  bool ok = true;
  ifreq ifr = named(name);
  set_ipv4(&ifr.ifr_addr, local);
  if (ok && ioctl(s, SIOCSIFADDR, &ifr) != 0) ok = false, *err = errno_text("SIOCSIFADDR");
  ifr = named(name);
  set_ipv4(&ifr.ifr_dstaddr, peer);
  if (ok && ioctl(s, SIOCSIFDSTADDR, &ifr) != 0) ok = false, *err = errno_text("SIOCSIFDSTADDR");
  ifr = named(name);
  set_ipv4(&ifr.ifr_netmask, in_addr{htonl(0xffffffffu)});
  if (ok && ioctl(s, SIOCSIFNETMASK, &ifr) != 0) ok = false, *err = errno_text("SIOCSIFNETMASK");
  ifr = named(name);
  ifr.ifr_mtu = mtu;
  if (ok && ioctl(s, SIOCSIFMTU, &ifr) != 0) ok = false, *err = errno_text("SIOCSIFMTU");
  ifr = named(name);
  ifr.ifr_qlen = 10000;
  if (ok && ioctl(s, SIOCSIFTXQLEN, &ifr) != 0) ok = false, *err = errno_text("SIOCSIFTXQLEN");
  // No IPv6 on the link: the kernel's own router solicitations and MLD
  // reports would cross it too and blur the counters tests read.
  if (ok) {
    const int f = open(("/proc/sys/net/ipv6/conf/" + name + "/disable_ipv6").c_str(), O_WRONLY | O_CLOEXEC);
    if (f >= 0) {
      (void)!write(f, "1", 1);
      close(f);
    }
  }
  if (ok) ok = set_up(s, name, err);
  close(s);
  return ok;
}

bool bring_up_loopback(std::string* err) {
  const int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return *err = errno_text("socket"), false;
  const bool ok = set_up(s, "lo", err);
  close(s);
  return ok;
}

}  // namespace barrage::netlab
