// PTY reference reader: openpty + fork/exec of `head -c N /dev/zero` on the slave, then a 64 KiB
// read loop on the master until EIO (common.h, pty_transfer).
// Usage: pty-reader N. Prints "<bytes> <nanoseconds>" (from before fork to after waitpid).
#define _GNU_SOURCE
#include <stdio.h>

#include "common.h"

int main(int argc, char **argv) {
  if (argc < 2) { fprintf(stderr, "usage: pty-reader N\n"); return 2; }
  long long t0 = now_ns();
  long long total = pty_transfer(argv[1]);
  if (total < 0) return 1;
  printf("%lld %lld\n", total, now_ns() - t0);
  return 0;
}
