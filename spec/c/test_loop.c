/*
** test_loop.c: the event loop (core/loop.h): the timer heap under random start/stop/re-arm,
** timers stopped or armed from callbacks, fd watches (eventfd, pipe) and regular files as
** always-ready watches.
*/
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "loop.h"
#include "testutil.h"

/* A fixed-seed generator, the same on every libc. */
static uint64_t rng_state = 0x9E3779B97F4A7C15u;
static uint32_t rnd(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (uint32_t)(rng_state >> 11);
}

static void sleep_ms(int ms) {
  struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

/* ---------- timers ---------- */

enum { NT = 600 };

typedef struct ttimer {
  hc_timer t;
  int id;
  int armed;            /* the model: should it be in the heap */
  uint64_t when;        /* the model's deadline */
  int fired;
} ttimer;

static ttimer T[NT];
static int fire_order[4 * NT];
static int nfired;
static int fired_while_armed;     /* a callback ran while its timer still had an index */
static int fired_early;           /* a callback ran before its deadline */

static void on_timer(hc_loop *loop, hc_timer *t) {
  ttimer *x = t->data;
  (void)loop;
  if (t->idx != 0) fired_while_armed++;
  if (hc_now_us() < x->when) fired_early++;
  x->fired++;
  if (nfired < 4 * NT) fire_order[nfired++] = x->id;
}

static size_t model_armed(void) {
  size_t n = 0;
  for (int i = 0; i < NT; i++) n += T[i].armed;
  return n;
}

/* Fire everything armed and check: deadline order, each exactly once, nothing else. */
static void check_fire_order(hc_loop *loop, int future) {
  size_t expect = model_armed();
  nfired = 0;
  fired_while_armed = fired_early = 0;
  for (int i = 0; i < NT; i++) T[i].fired = 0;
  uint64_t give_up = hc_now_us() + 10u * 1000000u;
  while ((size_t)nfired < expect && hc_now_us() < give_up)
    CHECK(hc_loop_turn(loop, future ? -1 : 0) >= 0);
  CHECK(hc_loop_turn(loop, 0) == 0);   /* nothing left */
  if (!CHECK((size_t)nfired == expect)) fprintf(stderr, "  fired %d of %zu\n", nfired, expect);
  CHECK(loop->nheap == 0);
  CHECK(fired_while_armed == 0);
  CHECK(fired_early == 0);
  int order_bad = 0, count_bad = 0;
  for (int i = 1; i < nfired; i++)
    if (T[fire_order[i - 1]].when > T[fire_order[i]].when) order_bad++;
  for (int i = 0; i < NT; i++) {
    if (T[i].fired != (T[i].armed ? 1 : 0)) count_bad++;
    T[i].armed = 0;
  }
  if (!CHECK(order_bad == 0)) fprintf(stderr, "  %d out-of-order firings\n", order_bad);
  if (!CHECK(count_bad == 0)) fprintf(stderr, "  %d timers fired a wrong number of times\n", count_bad);
}

/* Random operations against the model; deadlines are distinct (the id is in the low digits). */
static void random_ops(hc_loop *loop, uint64_t base, uint64_t spread_us, int ops) {
  int idx_bad = 0, start_failed = 0;
  for (int k = 0; k < ops; k++) {
    ttimer *x = &T[rnd() % NT];
    switch (rnd() % 4) {
      case 0: case 1: {   /* start, or re-arm when armed */
        uint64_t when = base + (uint64_t)(rnd() % (spread_us / 1000 + 1)) * 1000u + (uint64_t)x->id;
        if (hc_loop_timer_start(loop, &x->t, when) != 0) start_failed++;
        x->when = when;
        x->armed = 1;
        break;
      }
      case 2:
        hc_loop_timer_stop(loop, &x->t);
        x->armed = 0;
        break;
      case 3:   /* stop twice, or stop a timer that is not armed: harmless */
        hc_loop_timer_stop(loop, &x->t);
        hc_loop_timer_stop(loop, &x->t);
        x->armed = 0;
        break;
    }
    if ((x->t.idx != 0) != x->armed) idx_bad++;
  }
  CHECK(idx_bad == 0);
  CHECK(start_failed == 0);
  CHECK(loop->nheap == model_armed());
}

static void timers_init(void) {
  for (int i = 0; i < NT; i++) {
    memset(&T[i], 0, sizeof T[i]);
    T[i].id = i;
    T[i].t.cb = on_timer;
    T[i].t.data = &T[i];
  }
}

TEST(timer_heap_random_past) {
  hc_loop loop;
  CHECK(hc_loop_init(&loop) == 0);
  timers_init();
  uint64_t base = hc_now_us() - 60u * 1000000u;   /* all due already: one turn fires them */
  for (int round = 0; round < 20; round++) {
    random_ops(&loop, base, 30u * 1000000u, 5000);
    check_fire_order(&loop, 0);
  }
  hc_loop_close(&loop);
}

TEST(timer_heap_random_future) {
  hc_loop loop;
  CHECK(hc_loop_init(&loop) == 0);
  timers_init();
  for (int round = 0; round < 3; round++) {
    uint64_t base = hc_now_us() + 2000;
    random_ops(&loop, base, 40000, 3000);   /* deadlines over the next ~40 ms */
    check_fire_order(&loop, 1);
  }
  hc_loop_close(&loop);
}

TEST(timer_reserve_then_start) {
  hc_loop loop;
  CHECK(hc_loop_init(&loop) == 0);
  CHECK(hc_loop_timer_reserve(&loop, 1000) == 0);
  CHECK(loop.capheap >= 1000);
  size_t cap0 = loop.capheap;
  timers_init();
  uint64_t now = hc_now_us();
  int start_failed = 0;
  for (int i = 0; i < NT; i++) {
    T[i].when = now - 1000000u + (uint64_t)((i * 7919) % NT);   /* a permutation of 0..NT-1 */
    T[i].armed = 1;
    if (hc_loop_timer_start(&loop, &T[i].t, T[i].when) != 0) start_failed++;
  }
  CHECK(start_failed == 0);
  CHECK(loop.capheap == cap0);   /* arming within the reservation does not reallocate */
  check_fire_order(&loop, 0);
  hc_loop_close(&loop);
}

/* Callbacks that stop, arm and re-arm timers (their own and others). */
static hc_timer *victim;
static hc_timer *to_arm;
static uint64_t to_arm_when;
static int seq[16], nseq;

static void cb_record(hc_loop *loop, hc_timer *t) {
  (void)loop;
  if (nseq < 16) seq[nseq++] = (int)(intptr_t)t->data;
}

static void cb_stop_victim(hc_loop *loop, hc_timer *t) {
  cb_record(loop, t);
  hc_loop_timer_stop(loop, victim);
}

static void cb_arm_other(hc_loop *loop, hc_timer *t) {
  cb_record(loop, t);
  hc_loop_timer_start(loop, to_arm, to_arm_when);
}

static int rearm_left;
static void cb_rearm_self(hc_loop *loop, hc_timer *t) {
  cb_record(loop, t);
  if (rearm_left-- > 0) hc_loop_timer_start(loop, t, hc_now_us() + 2000);
}

TEST(timer_stop_from_callback) {
  hc_loop loop;
  hc_timer a = {0}, b = {0}, c = {0};
  CHECK(hc_loop_init(&loop) == 0);
  uint64_t now = hc_now_us();
  a.cb = cb_stop_victim; a.data = (void *)1;
  b.cb = cb_record;      b.data = (void *)2;
  c.cb = cb_record;      c.data = (void *)3;
  /* all three due in the same turn: a runs first and stops b */
  hc_loop_timer_start(&loop, &a, now - 300);
  hc_loop_timer_start(&loop, &b, now - 200);
  hc_loop_timer_start(&loop, &c, now - 100);
  victim = &b;
  nseq = 0;
  CHECK(hc_loop_turn(&loop, 0) == 2);
  CHECK(nseq == 2 && seq[0] == 1 && seq[1] == 3);
  CHECK(b.idx == 0 && loop.nheap == 0);
  /* a later timer stopped from an earlier one's callback, in different turns */
  now = hc_now_us();
  hc_loop_timer_start(&loop, &a, now + 1000);
  hc_loop_timer_start(&loop, &b, now + 30000);
  hc_loop_timer_start(&loop, &c, now + 40000);
  nseq = 0;
  uint64_t give_up = now + 2000000;
  while (loop.nheap && hc_now_us() < give_up) hc_loop_turn(&loop, -1);
  CHECK(nseq == 2 && seq[0] == 1 && seq[1] == 3);
  /* a timer stopping itself from its own callback (it is no longer armed): harmless */
  victim = &a;
  hc_loop_timer_start(&loop, &a, hc_now_us() - 1);
  nseq = 0;
  CHECK(hc_loop_turn(&loop, 0) == 1);
  CHECK(nseq == 1 && a.idx == 0 && loop.nheap == 0);
  hc_loop_close(&loop);
}

TEST(timer_arm_from_callback) {
  hc_loop loop;
  hc_timer a = {0}, b = {0}, c = {0};
  CHECK(hc_loop_init(&loop) == 0);
  uint64_t now = hc_now_us();
  a.cb = cb_arm_other; a.data = (void *)1;
  b.cb = cb_record;    b.data = (void *)2;
  c.cb = cb_record;    c.data = (void *)3;
  /* a (due) arms b in the past: b fires in the same turn, before c (later deadline) */
  hc_loop_timer_start(&loop, &a, now - 500);
  hc_loop_timer_start(&loop, &c, now - 100);
  to_arm = &b;
  to_arm_when = now - 300;
  nseq = 0;
  CHECK(hc_loop_turn(&loop, 0) == 3);
  CHECK(nseq == 3 && seq[0] == 1 && seq[1] == 2 && seq[2] == 3);
  /* a re-arms c (already armed, later) to a later time: c fires once, at the new time */
  now = hc_now_us();
  hc_loop_timer_start(&loop, &a, now - 10);
  hc_loop_timer_start(&loop, &c, now - 5);
  to_arm = &c;
  to_arm_when = now + 20000;
  nseq = 0;
  CHECK(hc_loop_turn(&loop, 0) == 1);
  CHECK(nseq == 1 && seq[0] == 1 && c.idx != 0);
  uint64_t give_up = now + 2000000;
  while (loop.nheap && hc_now_us() < give_up) hc_loop_turn(&loop, -1);
  CHECK(nseq == 2 && seq[1] == 3);
  CHECK(hc_now_us() >= now + 20000);
  /* a timer re-arming itself (a periodic timer) */
  a.cb = cb_rearm_self;
  rearm_left = 3;
  nseq = 0;
  hc_loop_timer_start(&loop, &a, hc_now_us());
  give_up = hc_now_us() + 2000000;
  while (loop.nheap && hc_now_us() < give_up) hc_loop_turn(&loop, -1);
  CHECK(nseq == 4);
  hc_loop_close(&loop);
}

TEST(turn_waits_for_timer) {
  hc_loop loop;
  hc_timer a = {0};
  CHECK(hc_loop_init(&loop) == 0);
  a.cb = cb_record;
  a.data = (void *)9;
  uint64_t t0 = hc_now_us();
  hc_loop_timer_start(&loop, &a, t0 + 30000);
  nseq = 0;
  /* max_wait -1: sleep until the timer; a max_wait shorter than the timer returns first */
  CHECK(hc_loop_turn(&loop, 5) == 0);
  CHECK(nseq == 0);
  while (nseq == 0 && hc_now_us() < t0 + 2000000) hc_loop_turn(&loop, -1);
  uint64_t dt = hc_now_us() - t0;
  CHECK(nseq == 1);
  CHECK(dt >= 30000);
  CHECK(dt < 1000000);
  /* an empty loop with a short timeout just returns */
  t0 = hc_now_us();
  CHECK(hc_loop_turn(&loop, 20) == 0);
  dt = hc_now_us() - t0;
  CHECK(dt >= 15000 && dt < 1000000);
  hc_loop_close(&loop);
}

/* ---------- fd watches ---------- */

static int io_calls;
static uint32_t io_revents;
static hc_watch *io_last;

static void on_io(hc_loop *loop, hc_watch *w, uint32_t revents) {
  (void)loop;
  io_calls++;
  io_revents = revents;
  io_last = w;
}

static void on_io_drain_eventfd(hc_loop *loop, hc_watch *w, uint32_t revents) {
  uint64_t v;
  on_io(loop, w, revents);
  if (read(w->fd, &v, sizeof v) != sizeof v) io_revents |= 0x80000000u;
}

TEST(watch_eventfd) {
  hc_loop loop;
  hc_watch w = {0};
  uint64_t one = 1;
  CHECK(hc_loop_init(&loop) == 0);
  int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  CHECK(efd >= 0);
  w.fd = efd;
  w.cb = on_io_drain_eventfd;
  CHECK(hc_loop_watch(&loop, &w, EPOLLIN) == 0);
  CHECK(w.registered && !w.always_ready);
  io_calls = 0;
  CHECK(hc_loop_turn(&loop, 10) == 0);   /* nothing yet */
  CHECK(io_calls == 0);
  CHECK(write(efd, &one, sizeof one) == sizeof one);
  CHECK(hc_loop_turn(&loop, 1000) == 1);
  CHECK(io_calls == 1 && io_last == &w && (io_revents & EPOLLIN) && !(io_revents & 0x80000000u));
  /* drained: no more events */
  CHECK(hc_loop_turn(&loop, 0) == 0);
  CHECK(io_calls == 1);
  /* after unwatch, a ready fd is not reported */
  hc_loop_unwatch(&loop, &w);
  CHECK(!w.registered);
  CHECK(write(efd, &one, sizeof one) == sizeof one);
  CHECK(hc_loop_turn(&loop, 10) == 0);
  CHECK(io_calls == 1);
  /* watch again: reported */
  CHECK(hc_loop_watch(&loop, &w, EPOLLIN) == 0);
  CHECK(hc_loop_turn(&loop, 1000) == 1);
  CHECK(io_calls == 2);
  /* rewatch with no events: silent even though it becomes readable */
  CHECK(hc_loop_rewatch(&loop, &w, 0) == 0);
  CHECK(write(efd, &one, sizeof one) == sizeof one);
  CHECK(hc_loop_turn(&loop, 10) == 0);
  CHECK(io_calls == 2);
  CHECK(hc_loop_rewatch(&loop, &w, EPOLLIN) == 0);
  CHECK(hc_loop_turn(&loop, 1000) == 1);
  CHECK(io_calls == 3);
  hc_loop_unwatch(&loop, &w);
  hc_loop_unwatch(&loop, &w);   /* twice: harmless */
  close(efd);
  hc_loop_close(&loop);
}

static void *write_later(void *arg) {
  int fd = *(int *)arg;
  uint64_t one = 1;
  sleep_ms(50);
  ssize_t r = write(fd, &one, sizeof one);
  (void)r;
  return NULL;
}

TEST(watch_eventfd_from_thread) {
  hc_loop loop;
  hc_watch w = {0};
  pthread_t th;
  CHECK(hc_loop_init(&loop) == 0);
  int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  w.fd = efd;
  w.cb = on_io_drain_eventfd;
  CHECK(hc_loop_watch(&loop, &w, EPOLLIN) == 0);
  io_calls = 0;
  uint64_t t0 = hc_now_us();
  CHECK(pthread_create(&th, NULL, write_later, &efd) == 0);
  /* -1 and no timers: waits until the fd is ready */
  CHECK(hc_loop_turn(&loop, -1) == 1);
  uint64_t dt = hc_now_us() - t0;
  CHECK(io_calls == 1);
  CHECK(dt >= 40000 && dt < 5000000);
  pthread_join(th, NULL);
  hc_loop_unwatch(&loop, &w);
  close(efd);
  hc_loop_close(&loop);
}

static void on_pipe_read(hc_loop *loop, hc_watch *w, uint32_t revents) {
  char buf[64];
  on_io(loop, w, revents);
  while (read(w->fd, buf, sizeof buf) > 0) {}
}

TEST(watch_pipe) {
  hc_loop loop;
  hc_watch r = {0}, wr = {0};
  int p[2];
  CHECK(hc_loop_init(&loop) == 0);
  CHECK(pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0);
  r.fd = p[0];
  r.cb = on_pipe_read;
  wr.fd = p[1];
  wr.cb = on_io;
  CHECK(hc_loop_watch(&loop, &r, EPOLLIN) == 0);
  CHECK(hc_loop_watch(&loop, &wr, EPOLLOUT) == 0);
  /* the write end is writable at once */
  io_calls = 0;
  CHECK(hc_loop_turn(&loop, 1000) == 1);
  CHECK(io_calls == 1 && io_last == &wr && (io_revents & EPOLLOUT));
  CHECK(hc_loop_rewatch(&loop, &wr, 0) == 0);
  CHECK(hc_loop_turn(&loop, 10) == 0);
  CHECK(write(p[1], "hello", 5) == 5);
  io_calls = 0;
  CHECK(hc_loop_turn(&loop, 1000) == 1);
  CHECK(io_calls == 1 && io_last == &r && (io_revents & EPOLLIN));
  CHECK(hc_loop_turn(&loop, 0) == 0);
  /* the writer closes: the reader sees a hang-up */
  hc_loop_unwatch(&loop, &wr);
  close(p[1]);
  io_calls = 0;
  CHECK(hc_loop_turn(&loop, 1000) >= 1);
  CHECK(io_calls >= 1 && io_last == &r && (io_revents & EPOLLHUP));
  hc_loop_unwatch(&loop, &r);
  close(p[0]);
  hc_loop_close(&loop);
}

/* Two watches ready in the same turn: the first callback to run unwatches the other, which
** must then not run (it is no longer watched). Used for epoll fds and for regular files. */
static hc_watch *pair[2];
static int pair_calls;
static void on_pair(hc_loop *loop, hc_watch *w, uint32_t revents) {
  (void)revents;
  pair_calls++;
  hc_watch *o = (w == pair[0]) ? pair[1] : pair[0];
  if (o->registered) hc_loop_unwatch(loop, o);
}

TEST(watch_unwatch_other_in_callback) {
  hc_loop loop;
  hc_watch a = {0}, b = {0};
  uint64_t one = 1;
  CHECK(hc_loop_init(&loop) == 0);
  int ea = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), eb = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  a.fd = ea; a.cb = on_pair;
  b.fd = eb; b.cb = on_pair;
  pair[0] = &a;
  pair[1] = &b;
  CHECK(hc_loop_watch(&loop, &a, EPOLLIN) == 0);
  CHECK(hc_loop_watch(&loop, &b, EPOLLIN) == 0);
  CHECK(write(ea, &one, sizeof one) == sizeof one);
  CHECK(write(eb, &one, sizeof one) == sizeof one);
  pair_calls = 0;
  hc_loop_turn(&loop, 1000);
  CHECK(pair_calls == 1);
  CHECK(a.registered + b.registered == 1);
  hc_loop_unwatch(&loop, &a);
  hc_loop_unwatch(&loop, &b);
  close(ea);
  close(eb);
  hc_loop_close(&loop);
}

/* ---------- regular files: always ready ---------- */

static int tmpfile_fd(void) {
  char path[] = "/tmp/hc_test_loop_XXXXXX";
  int fd = mkstemp(path);
  if (fd >= 0) unlink(path);
  return fd;
}

TEST(regular_file_always_ready) {
  hc_loop loop;
  hc_watch w = {0};
  CHECK(hc_loop_init(&loop) == 0);
  int fd = tmpfile_fd();
  CHECK(fd >= 0);
  w.fd = fd;
  w.cb = on_io;
  CHECK(hc_loop_watch(&loop, &w, EPOLLIN) == 0);
  CHECK(w.registered);
  CHECK(w.always_ready);
  /* every turn reports it at once, even with a long or infinite wait */
  io_calls = 0;
  uint64_t t0 = hc_now_us();
  CHECK(hc_loop_turn(&loop, 5000) == 1);
  CHECK(hc_loop_turn(&loop, -1) == 1);
  CHECK(hc_loop_turn(&loop, 5000) == 1);
  CHECK(hc_now_us() - t0 < 1000000);
  CHECK(io_calls == 3 && io_last == &w && (io_revents & EPOLLIN));
  /* rewatch for writing: reported with EPOLLOUT */
  CHECK(hc_loop_rewatch(&loop, &w, EPOLLOUT) == 0);
  CHECK(hc_loop_turn(&loop, 5000) == 1);
  CHECK(io_calls == 4 && (io_revents & EPOLLOUT) && !(io_revents & EPOLLIN));
  /* rewatch with no events: not reported, and the turn waits again */
  CHECK(hc_loop_rewatch(&loop, &w, 0) == 0);
  t0 = hc_now_us();
  hc_loop_turn(&loop, 20);
  CHECK(io_calls == 4);
  /* unwatch: gone */
  hc_loop_unwatch(&loop, &w);
  CHECK(!w.registered);
  t0 = hc_now_us();
  CHECK(hc_loop_turn(&loop, 20) == 0);
  CHECK(hc_now_us() - t0 >= 15000);
  CHECK(io_calls == 4);
  /* watch again; a timer due now runs in the same turn */
  hc_timer tm = {0};
  tm.cb = cb_record;
  tm.data = (void *)5;
  nseq = 0;
  CHECK(hc_loop_watch(&loop, &w, EPOLLIN) == 0);
  hc_loop_timer_start(&loop, &tm, hc_now_us());
  CHECK(hc_loop_turn(&loop, -1) == 2);
  CHECK(io_calls == 5 && nseq == 1);
  hc_loop_unwatch(&loop, &w);
  close(fd);
  hc_loop_close(&loop);
}

static void on_io_unwatch_self(hc_loop *loop, hc_watch *w, uint32_t revents) {
  on_io(loop, w, revents);
  hc_loop_unwatch(loop, w);
}

TEST(regular_files_unwatch_in_callback) {
  hc_loop loop;
  hc_watch a = {0}, b = {0}, c = {0};
  CHECK(hc_loop_init(&loop) == 0);
  int fa = tmpfile_fd(), fb = tmpfile_fd(), fc = tmpfile_fd();
  /* a callback unwatching itself: the others still run this turn, it does not run again */
  a.fd = fa; a.cb = on_io_unwatch_self;
  b.fd = fb; b.cb = on_io;
  c.fd = fc; c.cb = on_io;
  CHECK(hc_loop_watch(&loop, &a, EPOLLIN) == 0);
  CHECK(hc_loop_watch(&loop, &b, EPOLLIN) == 0);
  CHECK(hc_loop_watch(&loop, &c, EPOLLIN) == 0);
  io_calls = 0;
  CHECK(hc_loop_turn(&loop, 0) == 3);
  CHECK(io_calls == 3);
  CHECK(!a.registered);
  io_calls = 0;
  CHECK(hc_loop_turn(&loop, 0) == 2);
  CHECK(io_calls == 2);
  hc_loop_unwatch(&loop, &b);
  hc_loop_unwatch(&loop, &c);
  hc_loop_close(&loop);
  close(fa);
  close(fb);
  close(fc);
}

/* A callback that unwatches another always-ready watch: that one must not run afterwards in
** the same turn, exactly as with epoll-watched fds (watch_unwatch_other_in_callback). */
TEST(regular_files_unwatch_other_in_callback) {
  hc_loop loop;
  hc_watch a = {0}, b = {0};
  CHECK(hc_loop_init(&loop) == 0);
  int fa = tmpfile_fd(), fb = tmpfile_fd();
  a.fd = fa; a.cb = on_pair;
  b.fd = fb; b.cb = on_pair;
  pair[0] = &a;
  pair[1] = &b;
  CHECK(hc_loop_watch(&loop, &a, EPOLLIN) == 0);
  CHECK(hc_loop_watch(&loop, &b, EPOLLIN) == 0);
  CHECK(a.always_ready && b.always_ready);
  pair_calls = 0;
  hc_loop_turn(&loop, 0);
  if (!CHECK(pair_calls == 1))
    fprintf(stderr, "  an always-ready watch unwatched by an earlier callback of the same turn "
                    "still ran (%d callbacks)\n", pair_calls);
  hc_loop_unwatch(&loop, &a);
  hc_loop_unwatch(&loop, &b);
  hc_loop_close(&loop);
  close(fa);
  close(fb);
}

/* The owner of two watches frees them both from the first one's callback (a tool's pipes, a
** session's fds): the loop must not touch the other again, though its event is still in this
** turn's batch. The freed memory is then reused by something else that happens to look like a
** registered watch; without the loop dropping the stale event, its callback would run. ASan
** catches the plain use after free in the second test. */
typedef struct { hc_watch w[2]; } watch_pair;
static int stale_calls, owner_calls;
static watch_pair *owned;

static void on_stale(hc_loop *loop, hc_watch *w, uint32_t revents) {
  (void)loop; (void)w; (void)revents;
  stale_calls++;
}

static void on_owner_reuse(hc_loop *loop, hc_watch *w, uint32_t revents) {
  (void)w; (void)revents;
  owner_calls++;
  hc_loop_unwatch(loop, &owned->w[0]);
  hc_loop_unwatch(loop, &owned->w[1]);
  for (int i = 0; i < 2; i++) {   /* "freed and reused": registered again, another callback */
    memset(&owned->w[i], 0xAB, sizeof owned->w[i]);
    owned->w[i].registered = 1;
    owned->w[i].events = EPOLLIN;
    owned->w[i].cb = on_stale;
  }
}

static void on_owner_free(hc_loop *loop, hc_watch *w, uint32_t revents) {
  (void)w; (void)revents;
  owner_calls++;
  hc_loop_unwatch(loop, &owned->w[0]);
  hc_loop_unwatch(loop, &owned->w[1]);
  free(owned);
  owned = NULL;
}

static void run_owner_case(int regular, void (*cb)(hc_loop *, hc_watch *, uint32_t)) {
  hc_loop loop;
  uint64_t one = 1;
  CHECK(hc_loop_init(&loop) == 0);
  owned = calloc(1, sizeof *owned);
  int fds[2];
  for (int i = 0; i < 2; i++) {
    fds[i] = regular ? tmpfile_fd() : eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    owned->w[i].fd = fds[i];
    owned->w[i].cb = cb;
    CHECK(hc_loop_watch(&loop, &owned->w[i], EPOLLIN) == 0);
    if (!regular) CHECK(write(fds[i], &one, sizeof one) == sizeof one);
  }
  CHECK(owned->w[0].always_ready == regular && owned->w[1].always_ready == regular);
  stale_calls = owner_calls = 0;
  hc_loop_turn(&loop, regular ? 0 : 1000);
  CHECK(owner_calls == 1);
  if (!CHECK(stale_calls == 0))
    fprintf(stderr, "  a watch unwatched and reused by an earlier callback of the turn still ran\n");
  free(owned);
  owned = NULL;
  hc_loop_close(&loop);
  close(fds[0]);
  close(fds[1]);
}

TEST(watch_owner_frees_both_in_callback) {
  run_owner_case(0, on_owner_reuse);
  run_owner_case(0, on_owner_free);
}

TEST(regular_files_owner_frees_both_in_callback) {
  run_owner_case(1, on_owner_reuse);
  run_owner_case(1, on_owner_free);
}

int main(void) {
  RUN(timer_heap_random_past);
  RUN(timer_heap_random_future);
  RUN(timer_reserve_then_start);
  RUN(timer_stop_from_callback);
  RUN(timer_arm_from_callback);
  RUN(turn_waits_for_timer);
  RUN(watch_eventfd);
  RUN(watch_eventfd_from_thread);
  RUN(watch_pipe);
  RUN(watch_unwatch_other_in_callback);
  RUN(regular_file_always_ready);
  RUN(regular_files_unwatch_in_callback);
  RUN(regular_files_unwatch_other_in_callback);
  RUN(watch_owner_frees_both_in_callback);
  RUN(regular_files_owner_frees_both_in_callback);
  return tu_summary();
}
