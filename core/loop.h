/*
** loop.h: the event loop: epoll for fds, a binary heap of timers, and fds that epoll cannot
** watch (regular files on stdin/stdout) treated as always ready.
*/
#ifndef HC_LOOP_H
#define HC_LOOP_H

#include <stddef.h>
#include <stdint.h>

typedef struct hc_loop hc_loop;
typedef struct hc_watch hc_watch;
typedef struct hc_timer hc_timer;

typedef void (*hc_watch_fn)(hc_loop *loop, hc_watch *w, uint32_t revents);
typedef void (*hc_timer_fn)(hc_loop *loop, hc_timer *t);

struct hc_watch {
  int fd;
  uint32_t events;      /* EPOLLIN/EPOLLOUT currently wanted */
  int always_ready;     /* epoll refused the fd (a regular file): poll it every turn */
  int registered;
  hc_watch_fn cb;
  void *data;
  hc_watch *next_ready; /* list of always-ready watches */
};

struct hc_timer {
  uint64_t when_us;     /* monotonic deadline */
  size_t idx;           /* position in the heap + 1; 0 when not armed */
  hc_timer_fn cb;
  void *data;
};

struct hc_loop {
  int epfd;
  hc_timer **heap;
  size_t nheap, capheap;
  hc_watch *ready;      /* always-ready watches */
  uint64_t now_us;      /* cached at the start of each turn */
  /* The turn being dispatched: a callback may unwatch (and free) a watch whose event is still
  ** to come in this batch, or that is the next always-ready one; unwatch clears it from both. */
  struct epoll_event *batch;
  int nbatch;
  hc_watch *ready_next;
};

uint64_t hc_now_us(void);               /* CLOCK_MONOTONIC in microseconds */
int hc_loop_init(hc_loop *loop);         /* -1 with errno on failure */
void hc_loop_close(hc_loop *loop);
/* Start watching w->fd for `events`; 0 or -1 with errno. A regular file becomes always-ready. */
int hc_loop_watch(hc_loop *loop, hc_watch *w, uint32_t events);
int hc_loop_rewatch(hc_loop *loop, hc_watch *w, uint32_t events);
/* Stop watching; after this the loop never touches w again (not even for an event of the turn
** being dispatched), so its owner may free it at once. */
void hc_loop_unwatch(hc_loop *loop, hc_watch *w);
/* Arm (or re-arm) a timer at an absolute monotonic time; -1 only if the heap cannot grow
** (owners call hc_loop_timer_reserve when they are created, so arming then cannot fail). */
int hc_loop_timer_reserve(hc_loop *loop, size_t extra);
int hc_loop_timer_start(hc_loop *loop, hc_timer *t, uint64_t when_us);
void hc_loop_timer_stop(hc_loop *loop, hc_timer *t);
/* One turn: wait for fds at most max_wait_ms (-1: until the next timer), run callbacks, run due
** timers. Returns the number of events handled or -1 with errno (EINTR is not an error). */
int hc_loop_turn(hc_loop *loop, int max_wait_ms);

#endif
