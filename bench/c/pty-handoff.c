// The PTY reference loop (common.h) with a consumer thread beside it: what handing each slab of
// output to another thread costs the PTY's pace, with no Node in the way (bench/README.md, tenth
// round). The reader reads 64 KiB at a time into 256 KiB slabs (a ring of SLABS); when a slab is
// full, every EVERY-th one is posted to the consumer through an eventfd. The consumer wakes, and
// spins for WORK_US microseconds per wake-up, standing in for what a JavaScript thread does with
// a slab (spawnSession's takes ~50-90 us of CPU per hand-out here). It never reads the bytes.
// Usage: pty-handoff N WORK_US [EVERY=1] [SLABS=4]. WORK_US < 0: no consumer thread (the loop
// alone, into the ring). SLABS sizes the ring (touched before the run): a JavaScript consumer lets
// go of its slabs only at a scavenge, so the memory the reader writes into circulates through
// megabytes rather than staying in a core's cache. Prints "<bytes> <nanoseconds>" (from before
// fork to after waitpid), as pty-reader.
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>

#include "common.h"

#define SLAB (256 * 1024)
#define READ_MAX (64 * 1024)
// Posted instead of a slab count: the consumer stops.
#define STOP (UINT64_C(1) << 62)

static int posts;
static long long work_ns;

static void *consume(void *arg) {
  (void)arg;
  for (;;) {
    uint64_t v;
    if (read(posts, &v, sizeof v) != sizeof v) continue;
    if (v >= STOP) return NULL;
    long long t = now_ns();
    while (now_ns() - t < work_ns) {}
  }
}

int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: pty-handoff N WORK_US [EVERY] [SLABS]\n"); return 2; }
  long work_us = atol(argv[2]);
  long every = argc > 3 ? atol(argv[3]) : 1;
  if (every < 1) every = 1;
  long slabs = argc > 4 ? atol(argv[4]) : 4;
  if (slabs < 1) slabs = 1;
  char *ring = malloc((size_t)slabs * SLAB);
  if (ring == NULL) { perror("malloc"); return 1; }
  memset(ring, 1, (size_t)slabs * SLAB);
  posts = eventfd(0, EFD_CLOEXEC);
  if (posts < 0) { perror("eventfd"); return 1; }
  pthread_t consumer;
  work_ns = work_us * 1000LL;
  if (work_us >= 0 && pthread_create(&consumer, NULL, consume, NULL) != 0) { perror("pthread_create"); return 1; }

  long long t0 = now_ns();
  int master;
  pid_t pid = pty_start_head(argv[1], &master);
  if (pid < 0) return 1;
  long long total = 0, filled = 0;
  size_t used = 0;
  for (;;) {
    if (SLAB - used < READ_MAX) {
      filled++;
      used = 0;
      if (work_us >= 0 && filled % every == 0) {
        uint64_t one = 1;
        if (write(posts, &one, sizeof one) < 0) perror("write");
      }
    }
    ssize_t got = pty_read(master, ring + (filled % slabs) * SLAB + used, READ_MAX);
    if (got == 0) break;
    total += got;
    used += got;
  }
  pty_finish(master, pid);
  long long ns = now_ns() - t0;

  if (work_us >= 0) {
    uint64_t stop = STOP;
    if (write(posts, &stop, sizeof stop) < 0) perror("write");
    pthread_join(consumer, NULL);
  }
  free(ring);
  printf("%lld %lld\n", total, ns);
  return 0;
}
