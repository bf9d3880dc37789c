// Pipe reference reader: pipe + fork/exec of `head -c N /dev/zero` with stdout on the pipe, then a
// 64 KiB read loop until EOF. Usage: pipe-reader N [keep]. Prints "<bytes> <nanoseconds> <own CPU
// ns> <child CPU ns>" (the CPU figures show how much of the machine the pair needs).
//
// With `keep`, every read goes into its own malloc'd buffer, and the buffers are freed in batches
// of 64 MiB: what any reader that hands its chunks to a garbage-collected owner pays, against the
// plain loop whose one buffer stays in cache.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

int main(int argc, char **argv) {
  if (argc < 2) { fprintf(stderr, "usage: pipe-reader N\n"); return 2; }
  static char buf[65536];
  long long t0 = now_ns();
  int in;
  pid_t pid = start_head(argv[1], &in);
  if (pid < 0) return 1;
  long long total = 0;
  int keep = argc > 2;
  static char *kept[1024];
  int nkept = 0;
  for (;;) {
    char *dst = keep ? malloc(sizeof buf) : buf;
    if (!dst) { perror("malloc"); return 1; }
    ssize_t n = read(in, dst, sizeof buf);
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
