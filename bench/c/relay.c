// Relay reference for the agent streaming case: what any agent that forwards a child's output over
// a unix socket pays at the least. `head -c N /dev/zero` writes into a pipe; the relay (this
// process) moves it to one end of a unix stream socket pair, each chunk behind a 16-byte frame
// header; a client process reads the other end with a 256 KiB read loop and discards it.
// Usage: relay N [splice]. Prints "<bytes> <nanoseconds> <relay CPU ns> <children CPU ns>"
// (children: head and the client).
//
// Copy mode: a 256 KiB read() from the pipe, then writev(header, data) to the socket: the two
// copies through user space that the agent makes too. Splice mode: FIONREAD says how much the
// pipe holds, the header is written, then splice() moves exactly that much from the pipe into the
// socket without passing through user space: the ceiling for a relay that never touches the data.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

static int write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/** The client: reads until EOF; exits 0 if it saw `expected` bytes of payload plus headers. */
static void client(int fd, long long expected_min) {
  static char buf[256 * 1024];
  long long total = 0;
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) { total += n; continue; }
    if (n < 0 && errno == EINTR) continue;
    break;
  }
  _exit(total >= expected_min ? 0 : 1);
}

int main(int argc, char **argv) {
  if (argc < 2) { fprintf(stderr, "usage: relay N [splice]\n"); return 2; }
  int use_splice = argc > 2 && strcmp(argv[2], "splice") == 0;
  long long want = atoll(argv[1]);
  long long t0 = now_ns();
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) { perror("socketpair"); return 1; }
  pid_t reader = fork();
  if (reader < 0) { perror("fork"); return 1; }
  if (reader == 0) {
    close(sv[0]);
    client(sv[1], want);
  }
  close(sv[1]);
  int in;
  pid_t pid = start_head(argv[1], &in);
  if (pid < 0) return 1;
  static char buf[256 * 1024];
  char header[16] = {0};
  long long total = 0;
  for (;;) {
    ssize_t n;
    if (use_splice) {
      // The header needs the length first: FIONREAD says what the pipe holds (we are its only
      // reader, so all of it can be spliced); when it is empty, wait until it is readable.
      int avail = 0;
      if (ioctl(in, FIONREAD, &avail) < 0) { perror("FIONREAD"); return 1; }
      if (avail == 0) {
        fd_set rd;
        FD_ZERO(&rd);
        FD_SET(in, &rd);
        if (select(in + 1, &rd, NULL, NULL, NULL) < 0 && errno != EINTR) { perror("select"); return 1; }
        if (ioctl(in, FIONREAD, &avail) < 0) { perror("FIONREAD"); return 1; }
        if (avail == 0) break; // readable with nothing in it: EOF
      }
      memcpy(header, &avail, sizeof avail);
      if (write_all(sv[0], header, sizeof header) < 0) { perror("write"); return 1; }
      long long left = avail;
      while (left > 0) {
        ssize_t s = splice(in, NULL, sv[0], NULL, (size_t)left, SPLICE_F_MOVE);
        if (s < 0 && errno == EINTR) continue;
        if (s <= 0) { perror("splice"); return 1; }
        left -= s;
      }
      n = avail;
    } else {
      n = read(in, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      memcpy(header, &n, sizeof n);
      struct iovec iov[2] = {{header, sizeof header}, {buf, (size_t)n}};
      size_t left = sizeof header + (size_t)n;
      while (left > 0) {
        ssize_t w = writev(sv[0], iov, 2);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) { perror("writev"); return 1; }
        left -= (size_t)w;
        // Advance the iovecs past what was written.
        for (int i = 0; i < 2; i++) {
          size_t k = (size_t)w < iov[i].iov_len ? (size_t)w : iov[i].iov_len;
          iov[i].iov_base = (char *)iov[i].iov_base + k;
          iov[i].iov_len -= k;
          w -= (ssize_t)k;
        }
      }
    }
    total += n;
  }
  close(sv[0]);
  int status, client_status;
  waitpid(pid, &status, 0);
  waitpid(reader, &client_status, 0);
  long long t1 = now_ns();
  if (!WIFEXITED(client_status) || WEXITSTATUS(client_status) != 0) { fprintf(stderr, "relay: the client came up short\n"); return 1; }
  struct rusage self, child;
  getrusage(RUSAGE_SELF, &self);
  getrusage(RUSAGE_CHILDREN, &child);
  printf("%lld %lld %lld %lld\n", total, t1 - t0, cpu_ns(&self), cpu_ns(&child));
  return 0;
}
