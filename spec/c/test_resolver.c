/*
** test_resolver.c: lookups run off the loop thread and answer on it; a cancelled lookup never
** calls back; many lookups at once all answer. Names come from /etc/hosts ("localhost"), so the
** test needs no network.
*/
#include "resolver.h"
#include "testutil.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

typedef struct answer {
  int called, err, naddrs, loopback;
  pthread_t thread;
} answer;

static void on_answer(void *data, int err, const struct sockaddr_storage *addrs, int naddrs) {
  answer *a = data;
  a->called++;
  a->err = err;
  a->naddrs = naddrs;
  a->thread = pthread_self();
  for (int i = 0; i < naddrs; i++) {
    if (addrs[i].ss_family == AF_INET) {
      const struct sockaddr_in *s4 = (const struct sockaddr_in *)(const void *)&addrs[i];
      if ((ntohl(s4->sin_addr.s_addr) >> 24) == 127) a->loopback++;
    } else if (addrs[i].ss_family == AF_INET6) {
      const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)&addrs[i];
      if (IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr)) a->loopback++;
    }
  }
}

static int turn_until(hc_loop *loop, answer *a, int n, double secs) {
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (;;) {
    int all = 1;
    for (int i = 0; i < n; i++) all &= a[i].called > 0;
    if (all) return 1;
    hc_loop_turn(loop, 50);
    clock_gettime(CLOCK_MONOTONIC, &t);
    if ((double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) / 1e9 > secs) return 0;
  }
}

TEST(localhost_answers_on_the_loop_thread) {
  hc_loop loop;
  CHECK(hc_loop_init(&loop) == 0);
  hc_resolver *r = hc_resolver_new(&loop);
  CHECK(r != NULL);
  answer a = {0};
  hc_resolve_job *job;
  CHECK(hc_resolver_submit(r, "localhost", on_answer, &a, &job) == 0);
  CHECK(a.called == 0);   /* never inline */
  CHECK(turn_until(&loop, &a, 1, 20));
  CHECK(a.called == 1);
  CHECK(a.err == 0);
  CHECK(a.naddrs >= 1);
  CHECK(a.loopback == a.naddrs);
  CHECK(pthread_equal(a.thread, pthread_self()));
  hc_resolver_free(r);
  hc_loop_close(&loop);
}

TEST(cancelled_never_calls_back_and_many_at_once_all_answer) {
  hc_loop loop;
  CHECK(hc_loop_init(&loop) == 0);
  hc_resolver *r = hc_resolver_new(&loop);
  enum { N = 40 };
  answer a[N];
  memset(a, 0, sizeof a);
  hc_resolve_job *jobs[N];
  for (int i = 0; i < N; i++) CHECK(hc_resolver_submit(r, "localhost", on_answer, &a[i], &jobs[i]) == 0);
  answer gone = {0};
  hc_resolve_job *gj;
  CHECK(hc_resolver_submit(r, "localhost", on_answer, &gone, &gj) == 0);
  hc_resolver_cancel(r, gj);
  CHECK(turn_until(&loop, a, N, 30));
  for (int i = 0; i < 20; i++) hc_loop_turn(&loop, 10);   /* let the cancelled one finish */
  int ok = 0;
  for (int i = 0; i < N; i++) ok += a[i].called == 1 && a[i].err == 0;
  CHECK(ok == N);
  CHECK(gone.called == 0);
  hc_resolver_free(r);
  hc_loop_close(&loop);
}

TEST(refuses_empty_and_overlong_names) {
  hc_loop loop;
  CHECK(hc_loop_init(&loop) == 0);
  hc_resolver *r = hc_resolver_new(&loop);
  answer a = {0};
  hc_resolve_job *job;
  char big[300];
  memset(big, 'a', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  CHECK(hc_resolver_submit(r, "", on_answer, &a, &job) == -1);
  CHECK(hc_resolver_submit(r, big, on_answer, &a, &job) == -1);
  hc_resolver_free(r);   /* with nothing queued: no thread was started */
  hc_loop_close(&loop);
  CHECK(a.called == 0);
}

TEST(free_with_lookups_in_flight) {
  hc_loop loop;
  CHECK(hc_loop_init(&loop) == 0);
  hc_resolver *r = hc_resolver_new(&loop);
  answer a[8];
  memset(a, 0, sizeof a);
  hc_resolve_job *job;
  for (int i = 0; i < 8; i++) CHECK(hc_resolver_submit(r, "localhost", on_answer, &a[i], &job) == 0);
  hc_resolver_free(r);   /* joins the workers; no callback after this */
  hc_loop_close(&loop);
  int called = 0;
  for (int i = 0; i < 8; i++) called += a[i].called;
  CHECK(called == 0);
}

int main(void) {
  RUN(localhost_answers_on_the_loop_thread);
  RUN(cancelled_never_calls_back_and_many_at_once_all_answer);
  RUN(refuses_empty_and_overlong_names);
  RUN(free_with_lookups_in_flight);
  return tu_summary();
}
