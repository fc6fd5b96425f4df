#include "serve/peer_watch.h"

#include <dirent.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

namespace tulu {

namespace {

// The numeric host and port of an address (as httplib's get_ip_and_port writes them).
bool host_and_port(const sockaddr_storage& addr, socklen_t length, std::string& host, int& port) {
  if (addr.ss_family != AF_INET && addr.ss_family != AF_INET6) return false;
  char buffer[NI_MAXHOST];
  char service[NI_MAXSERV];
  if (getnameinfo(reinterpret_cast<const sockaddr*>(&addr), length, buffer, sizeof(buffer), service,
                  sizeof(service), NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
    return false;
  }
  host = buffer;
  port = std::atoi(service);
  return true;
}

bool matches(int fd, const std::string& remote_addr, int remote_port, const std::string& local_addr,
             int local_port) {
  struct stat info {};
  if (fstat(fd, &info) != 0 || !S_ISSOCK(info.st_mode)) return false;
  sockaddr_storage addr{};
  socklen_t length = sizeof(addr);
  std::string host;
  int port = -1;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &length) != 0 ||
      !host_and_port(addr, length, host, port) || port != remote_port || host != remote_addr) {
    return false;
  }
  if (local_port < 0) return true;
  length = sizeof(addr);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length) != 0 ||
      !host_and_port(addr, length, host, port)) {
    return false;
  }
  return port == local_port && (local_addr.empty() || host == local_addr);
}

}  // namespace

PeerWatch::PeerWatch(const std::string& remote_addr, int remote_port, const std::string& local_addr,
                     int local_port) {
  if (remote_port < 0) return;
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return;
  const int own = dirfd(dir);
  while (const dirent* entry = readdir(dir)) {
    char* end = nullptr;
    const long fd = std::strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0' || fd == own) continue;
    if (matches(static_cast<int>(fd), remote_addr, remote_port, local_addr, local_port)) {
      fd_ = static_cast<int>(fd);
      break;
    }
  }
  closedir(dir);
}

bool PeerWatch::gone() const {
  if (fd_ < 0) return false;
  pollfd p{};
  p.fd = fd_;
  p.events = POLLIN | POLLRDHUP;
  if (poll(&p, 1, 0) <= 0) return false;  // nothing to read, no hang-up: connected
  if ((p.revents & (POLLHUP | POLLERR | POLLRDHUP | POLLNVAL)) != 0) return true;
  char byte = 0;
  const ssize_t n = recv(fd_, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n > 0) return false;  // the client sent more (a pipelined request)
  if (n == 0) return true;  // orderly shutdown
  return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
}

}  // namespace tulu
