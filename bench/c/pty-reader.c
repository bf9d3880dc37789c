// PTY reference reader: openpty + fork/exec of `head -c N /dev/zero` on the slave, then a 64 KiB
// read loop on the master until EIO (the slave side is gone and the buffer drained).
// Usage: pty-reader N. Prints "<bytes> <nanoseconds>" (from before fork to after waitpid).
#define _GNU_SOURCE
#include <errno.h>
#include <pty.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

int main(int argc, char **argv) {
  if (argc < 2) { fprintf(stderr, "usage: pty-reader N\n"); return 2; }
  static char buf[65536];
  long long t0 = now_ns();
  int master, slave;
  if (openpty(&master, &slave, NULL, NULL, NULL) < 0) { perror("openpty"); return 1; }
  pid_t pid = fork();
  if (pid < 0) { perror("fork"); return 1; }
  if (pid == 0) {
    setsid();
    ioctl(slave, TIOCSCTTY, 0);
    dup2(slave, 0); dup2(slave, 1); dup2(slave, 2);
    if (slave > 2) close(slave);
    close(master);
    execlp("head", "head", "-c", argv[1], "/dev/zero", (char *)NULL);
    _exit(127);
  }
  close(slave);
  long long total = 0;
  for (;;) {
    ssize_t n = read(master, buf, sizeof buf);
    if (n > 0) { total += n; continue; }
    if (n < 0 && errno == EINTR) continue;
    break; /* 0 or EIO: the slave is closed and drained */
  }
  int status;
  waitpid(pid, &status, 0);
  long long t1 = now_ns();
  printf("%lld %lld\n", total, t1 - t0);
  return 0;
}
