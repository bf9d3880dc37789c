// Pipe reference reader: pipe + fork/exec of `head -c N /dev/zero` with stdout on the pipe, then a
// 64 KiB read loop until EOF. Usage: pipe-reader N [keep|grown]. Prints "<bytes> <nanoseconds>
// <own CPU ns> <child CPU ns>" (the CPU figures show how much of the machine the pair needs).
//
// With `keep`, every read goes into its own malloc'd buffer, and the buffers are freed in batches
// of 64 MiB: what any reader that hands its chunks to a garbage-collected owner pays, against the
// plain loop whose one buffer stays in cache.
//
// With `grown`, the pipe is grown to 1 MiB first (F_SETPIPE_SZ, as spawnSession does once a pipe
// fills) and read up to 1 MiB at a time into one buffer: the cheapest reader there is, so `head`
// sets the pace. Nothing that reads this pipe can be faster; it bounds any ratio between readers.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

int main(int argc, char **argv) {
  if (argc < 2) { fprintf(stderr, "usage: pipe-reader N\n"); return 2; }
  static char buf[1 << 20];
  long long t0 = now_ns();
  int in;
  pid_t pid = start_head(argv[1], &in);
  if (pid < 0) return 1;
  long long total = 0;
  int keep = argc > 2 && strcmp(argv[2], "keep") == 0;
  int grown = argc > 2 && strcmp(argv[2], "grown") == 0;
  size_t size = 65536;
  if (grown) {
    if (fcntl(in, F_SETPIPE_SZ, 1 << 20) < 0) { perror("F_SETPIPE_SZ"); return 1; }
    size = sizeof buf;
  }
  static char *kept[1024];
  int nkept = 0;
  for (;;) {
    char *dst = keep ? malloc(size) : buf;
    if (!dst) { perror("malloc"); return 1; }
    ssize_t n = read(in, dst, size);
    if (n > 0) {
      total += n;
      if (keep) {
        kept[nkept++] = dst;
        if (nkept == 1024) { // 64 MiB
          while (nkept > 0) free(kept[--nkept]);
        }
      }
      continue;
    }
    if (keep) free(dst);
    if (n < 0 && errno == EINTR) continue;
    break;
  }
  while (nkept > 0) free(kept[--nkept]);
  int status;
  waitpid(pid, &status, 0);
  long long t1 = now_ns();
  struct rusage self, child;
  getrusage(RUSAGE_SELF, &self);
  getrusage(RUSAGE_CHILDREN, &child);
  printf("%lld %lld %lld %lld\n", total, t1 - t0, cpu_ns(&self), cpu_ns(&child));
  return 0;
}
