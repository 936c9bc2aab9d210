/*
** loop.c: epoll + timer heap. Single-threaded; every callback runs on the loop's thread.
*/
#include "loop.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define LOOP_MAX_EVENTS 256

uint64_t hc_now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);  /* cannot fail for CLOCK_MONOTONIC */
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int hc_loop_init(hc_loop *loop) {
  loop->heap = NULL;
  loop->nheap = loop->capheap = 0;
  loop->ready = NULL;
  loop->batch = NULL;
  loop->nbatch = 0;
  loop->ready_next = NULL;
  loop->now_us = hc_now_us();
  loop->epfd = epoll_create1(EPOLL_CLOEXEC);
  return loop->epfd < 0 ? -1 : 0;
}

void hc_loop_close(hc_loop *loop) {
  if (loop->epfd >= 0) close(loop->epfd);
  loop->epfd = -1;
  free(loop->heap);
  loop->heap = NULL;
  loop->nheap = loop->capheap = 0;
}

/* {===== fd watches ===== */

static void ready_remove(hc_loop *loop, hc_watch *w) {
  for (hc_watch **pp = &loop->ready; *pp; pp = &(*pp)->next_ready)
    if (*pp == w) { *pp = w->next_ready; break; }
  w->next_ready = NULL;
}

int hc_loop_watch(hc_loop *loop, hc_watch *w, uint32_t events) {
  struct epoll_event ev = {0};
  ev.events = events;
  ev.data.ptr = w;
  w->events = events;
  w->always_ready = 0;
  w->next_ready = NULL;
  if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, w->fd, &ev) == 0) {
    w->registered = 1;
    return 0;
  }
  if (errno != EPERM) return -1;
  /* A regular file or similar: reads and writes never block, so poll it each turn. */
  w->registered = 1;
  w->always_ready = 1;
  w->next_ready = loop->ready;
  loop->ready = w;
  return 0;
}

int hc_loop_rewatch(hc_loop *loop, hc_watch *w, uint32_t events) {
  if (!w->registered) return hc_loop_watch(loop, w, events);
  if (w->events == events) return 0;
  w->events = events;
  if (w->always_ready) return 0;
  struct epoll_event ev = {0};
  ev.events = events;
  ev.data.ptr = w;
  return epoll_ctl(loop->epfd, EPOLL_CTL_MOD, w->fd, &ev);
}

void hc_loop_unwatch(hc_loop *loop, hc_watch *w) {
  if (!w->registered) return;
  for (int i = 0; i < loop->nbatch; i++)
    if (loop->batch[i].data.ptr == w) loop->batch[i].data.ptr = NULL;
  if (loop->ready_next == w) loop->ready_next = w->next_ready;
  if (w->always_ready) ready_remove(loop, w);
  else epoll_ctl(loop->epfd, EPOLL_CTL_DEL, w->fd, NULL); /* fails only if already closed */
  w->registered = 0;
  w->always_ready = 0;
}

/* }===== */

/* {===== timer heap (1-based idx stored in the timer, so stop is O(log n)) ===== */

static void heap_set(hc_loop *loop, size_t i, hc_timer *t) {
  loop->heap[i] = t;
  t->idx = i + 1;
}

static void sift_up(hc_loop *loop, size_t i) {
  hc_timer *t = loop->heap[i];
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (loop->heap[parent]->when_us <= t->when_us) break;
    heap_set(loop, i, loop->heap[parent]);
    i = parent;
  }
  heap_set(loop, i, t);
}

static void sift_down(hc_loop *loop, size_t i) {
  hc_timer *t = loop->heap[i];
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    uint64_t mw = t->when_us;
    if (l < loop->nheap && loop->heap[l]->when_us < mw) { m = l; mw = loop->heap[l]->when_us; }
    if (r < loop->nheap && loop->heap[r]->when_us < mw) m = r;
    if (m == i) break;
    heap_set(loop, i, loop->heap[m]);
    i = m;
  }
  heap_set(loop, i, t);
}

int hc_loop_timer_reserve(hc_loop *loop, size_t extra) {
  if (loop->capheap - loop->nheap >= extra) return 0;
  size_t cap = loop->capheap ? loop->capheap : 64;
  while (cap - loop->nheap < extra) cap *= 2;
  hc_timer **nh = realloc(loop->heap, cap * sizeof *nh);
  if (!nh) return -1;
  loop->heap = nh;
  loop->capheap = cap;
  return 0;
}

void hc_loop_timer_stop(hc_loop *loop, hc_timer *t) {
  if (!t->idx) return;
  size_t i = t->idx - 1;
  t->idx = 0;
  loop->nheap--;
  if (i == loop->nheap) return;
  hc_timer *last = loop->heap[loop->nheap];
  heap_set(loop, i, last);
  if (i > 0 && loop->heap[(i - 1) / 2]->when_us > last->when_us) sift_up(loop, i);
  else sift_down(loop, i);
}

int hc_loop_timer_start(hc_loop *loop, hc_timer *t, uint64_t when_us) {
  hc_loop_timer_stop(loop, t);
  if (loop->nheap == loop->capheap && hc_loop_timer_reserve(loop, 1)) return -1;
  t->when_us = when_us;
  heap_set(loop, loop->nheap, t);
  loop->nheap++;
  sift_up(loop, loop->nheap - 1);
  return 0;
}

/* }===== */

static int run_timers(hc_loop *loop) {
  int n = 0;
  loop->now_us = hc_now_us();
  while (loop->nheap && loop->heap[0]->when_us <= loop->now_us) {
    hc_timer *t = loop->heap[0];
    hc_loop_timer_stop(loop, t);
    t->cb(loop, t);
    n++;
  }
  return n;
}

int hc_loop_turn(hc_loop *loop, int max_wait_ms) {
  struct epoll_event evs[LOOP_MAX_EVENTS];
  int timeout = max_wait_ms;
  loop->now_us = hc_now_us();
  if (loop->ready) timeout = 0;
  if (loop->nheap) {
    uint64_t when = loop->heap[0]->when_us;
    int tms = when <= loop->now_us ? 0 : (int)((when - loop->now_us + 999) / 1000);
    if (when > loop->now_us && (when - loop->now_us) / 1000 > 3600000) tms = 3600000;
    if (timeout < 0 || tms < timeout) timeout = tms;
  }
  int n = epoll_wait(loop->epfd, evs, LOOP_MAX_EVENTS, timeout);
  if (n < 0) {
    if (errno != EINTR) return -1;
    n = 0;
  }
  loop->now_us = hc_now_us();
  loop->batch = evs;
  loop->nbatch = n;
  for (int i = 0; i < n; i++) {
    hc_watch *w = evs[i].data.ptr;   /* NULL: unwatched by an earlier callback of this turn */
    if (w && w->registered) w->cb(loop, w, evs[i].events);
  }
  loop->batch = NULL;
  loop->nbatch = 0;
  /* Always-ready watches: a callback may unwatch any of them, the next one included, so the
  ** next link is kept where unwatch can move it on. */
  for (hc_watch *w = loop->ready; w; w = loop->ready_next) {
    loop->ready_next = w->next_ready;
    if (w->registered && w->events) w->cb(loop, w, w->events);
    n++;
  }
  loop->ready_next = NULL;
  return n + run_timers(loop);
}
