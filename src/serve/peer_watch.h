// Whether the client of a request is still connected, for requests whose response is
// written only at the end (non-streaming generation): their handler waits while the
// scheduler generates, and must notice a client that went away so that its slots are
// freed at once instead of generating up to max_tokens for nobody.
//
// Debian's cpp-httplib 0.11.4 gives a handler neither the socket nor a "connection
// closed" test (Request::is_connection_closed came in later versions). The request does
// carry both ends' addresses and ports, which name the TCP connection uniquely, so the
// socket is found among this process's descriptors (/proc/self/fd) by that 4-tuple. The
// descriptor stays open while the handler runs (httplib closes it after the response).
//
// gone() is true once the peer closed or reset the connection (an orderly shutdown,
// including a client that half-closes its sending side while waiting, as later httplib
// versions also treat it). Data the client sent ahead (a pipelined request) counts as
// alive. When the socket is not found (not TCP), gone() is always false.
// Not thread-safe; use from the handler's thread.
#pragma once

#include <string>

namespace tulu {

class PeerWatch {
 public:
  // Finds the connected socket whose local end is local_addr:local_port and whose peer
  // is remote_addr:remote_port (numeric host strings as httplib writes them; a local_port
  // < 0 matches any local end).
  PeerWatch(const std::string& remote_addr, int remote_port, const std::string& local_addr,
            int local_port);
  bool found() const { return fd_ >= 0; }
  bool gone() const;

 private:
  int fd_ = -1;  // not owned
};

}  // namespace tulu
