// PeerWatch on real loopback TCP connections: it finds the server side's socket by the
// connection's addresses and ports (and not another connection's), reports the client
// as connected while it waits or sends more data, and as gone once it closes or only
// half-closes; a socket it cannot find is never "gone".
#include "serve/peer_watch.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>

namespace tulu {
namespace {

int port_of(int fd, bool peer) {
  sockaddr_in addr{};
  socklen_t length = sizeof(addr);
  const int rc = peer ? getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &length)
                      : getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length);
  EXPECT_EQ(rc, 0);
  return ntohs(addr.sin_port);
}

// A listening socket on 127.0.0.1 and connections to it: client and accepted server ends.
class Loopback {
 public:
  Loopback() {
    listener_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(listen(listener_, 4), 0);
    port_ = port_of(listener_, false);
  }
  ~Loopback() { close(listener_); }
  // {client fd, server fd}
  std::pair<int, int> connect_one() {
    const int client = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port_));
    EXPECT_EQ(connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    const int server = accept(listener_, nullptr, nullptr);
    EXPECT_GE(server, 0);
    return {client, server};
  }
  int port() const { return port_; }

 private:
  int listener_ = -1;
  int port_ = 0;
};

// Waits up to 2 s for the watch to say gone (the FIN travels through the kernel).
bool becomes_gone(const PeerWatch& watch) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (std::chrono::steady_clock::now() < deadline) {
    if (watch.gone()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

TEST(PeerWatch, FindsTheConnectionAndSeesTheClientLeave) {
  Loopback loopback;
  const auto [client_a, server_a] = loopback.connect_one();
  const auto [client_b, server_b] = loopback.connect_one();
  const PeerWatch watch_a("127.0.0.1", port_of(client_a, false), "127.0.0.1", loopback.port());
  const PeerWatch watch_b("127.0.0.1", port_of(client_b, false), "127.0.0.1", loopback.port());
  ASSERT_TRUE(watch_a.found());
  ASSERT_TRUE(watch_b.found());
  EXPECT_FALSE(watch_a.gone());
  EXPECT_FALSE(watch_b.gone());
  // More data from the client (a pipelined request) is not a departure.
  ASSERT_EQ(write(client_a, "GET / HTTP/1.1\r\n", 16), 16);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(watch_a.gone());
  // Closing one connection leaves the other connected.
  close(client_b);
  EXPECT_TRUE(becomes_gone(watch_b));
  EXPECT_FALSE(watch_a.gone());
  // A half-close (the client stops sending) counts as gone.
  shutdown(client_a, SHUT_WR);
  EXPECT_TRUE(becomes_gone(watch_a));
  close(client_a);
  close(server_a);
  close(server_b);
}

TEST(PeerWatch, UnknownConnectionIsNeverGone) {
  Loopback loopback;
  const auto [client, server] = loopback.connect_one();
  // Right addresses, a port no connection has.
  const PeerWatch missing("127.0.0.1", port_of(client, false) ^ 1, "127.0.0.1", loopback.port());
  EXPECT_FALSE(missing.found());
  EXPECT_FALSE(missing.gone());
  const PeerWatch no_port("127.0.0.1", -1, "", -1);
  EXPECT_FALSE(no_port.found());
  close(client);
  EXPECT_FALSE(missing.gone());
  close(server);
}

}  // namespace
}  // namespace tulu
