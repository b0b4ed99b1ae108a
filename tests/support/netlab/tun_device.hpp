// Layer-3 TUN devices for the delay line: open one (IFF_TUN | IFF_NO_PI, so
// each read or write is exactly one IP packet) and give it a point-to-point
// IPv4 address with ioctls, in whatever network namespace the calling thread
// is in at that moment. The device lives as long as its descriptor.
#pragma once

#include <netinet/in.h>

#include <string>

namespace barrage::netlab {

// A non-blocking, close-on-exec descriptor of the new device `name`, or -1
// with *err set (EBUSY: another process holds that name).
int open_tun(const std::string& name, std::string* err);

// local/32 peer peer, the given MTU, a long transmit queue (a burst from a
// thousand connections must not overflow the kernel's side), then up.
bool configure_point_to_point(const std::string& name, in_addr local, in_addr peer, int mtu, std::string* err);

// Sets IFF_UP on `lo` (a new namespace starts with it down).
bool bring_up_loopback(std::string* err);

}  // namespace barrage::netlab
