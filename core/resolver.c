/*
** resolver.c: getaddrinfo on worker threads. A job moves from the queue to a worker and then to
** the done list; the eventfd wakes the loop, which runs the callbacks of jobs not cancelled.
** Workers block every signal: the watchdog's and the host's signals belong to other threads.
*/
#include "resolver.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

struct hc_resolve_job {
  char name[HC_RESOLVER_NAME_MAX + 1];
  hc_resolve_cb cb;
  void *data;
  int cancelled;
  int err;
  int naddrs;
  struct sockaddr_storage addrs[HC_RESOLVER_MAX_ADDRS];
  hc_resolve_job *next;
};

struct hc_resolver {
  hc_loop *loop;
  int efd;
  hc_watch w;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  hc_resolve_job *queue, **queue_tail;
  hc_resolve_job *done;
  pthread_t threads[HC_RESOLVER_THREADS];
  int nthreads, idle, stopping;
};

/* {===== workers ===== */

static int map_gai(int rc, int sys_errno) {
  switch (rc) {
    case 0: return 0;
    case EAI_NONAME: case EAI_NODATA: case EAI_ADDRFAMILY: return ENOENT;
    case EAI_AGAIN: return EAGAIN;
    case EAI_MEMORY: return ENOMEM;
    case EAI_SYSTEM: return sys_errno ? sys_errno : EIO;
    default: return EIO;
  }
}

static void lookup(hc_resolve_job *j) {
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;   /* one entry per address, not one per socket type */
  hints.ai_flags = AI_ADDRCONFIG;
  errno = 0;
  int rc = getaddrinfo(j->name, NULL, &hints, &res);
  j->err = map_gai(rc, errno);
  j->naddrs = 0;
  for (struct addrinfo *a = res; !j->err && a && j->naddrs < HC_RESOLVER_MAX_ADDRS; a = a->ai_next) {
    if ((a->ai_family != AF_INET && a->ai_family != AF_INET6) ||
        a->ai_addrlen > sizeof(struct sockaddr_storage))
      continue;
    memset(&j->addrs[j->naddrs], 0, sizeof j->addrs[0]);
    memcpy(&j->addrs[j->naddrs], a->ai_addr, a->ai_addrlen);
    j->naddrs++;
  }
  if (res) freeaddrinfo(res);
  if (!j->err && j->naddrs == 0) j->err = ENOENT;
}

static void *worker(void *arg) {
  hc_resolver *r = arg;
  pthread_mutex_lock(&r->mu);
  for (;;) {
    while (!r->queue && !r->stopping) {
      r->idle++;
      pthread_cond_wait(&r->cv, &r->mu);
      r->idle--;
    }
    if (r->stopping) break;
    hc_resolve_job *j = r->queue;
    r->queue = j->next;
    if (!r->queue) r->queue_tail = &r->queue;
    int skip = j->cancelled;
    pthread_mutex_unlock(&r->mu);
    if (!skip) lookup(j);
    pthread_mutex_lock(&r->mu);
    j->next = r->done;
    r->done = j;
    uint64_t one = 1;
    ssize_t w = write(r->efd, &one, sizeof one);   /* cannot fail short of a full counter */
    (void)w;
  }
  pthread_mutex_unlock(&r->mu);
  return NULL;
}

/* }===== */

/* {===== the loop side ===== */

static void on_done(hc_loop *loop, hc_watch *w, uint32_t ev) {
  (void)loop; (void)ev;
  hc_resolver *r = w->data;
  uint64_t v;
  ssize_t n = read(r->efd, &v, sizeof v);
  (void)n;
  pthread_mutex_lock(&r->mu);
  hc_resolve_job *list = r->done;
  r->done = NULL;
  pthread_mutex_unlock(&r->mu);
  /* oldest first: the list was pushed at its head */
  hc_resolve_job *rev = NULL;
  while (list) {
    hc_resolve_job *next = list->next;
    list->next = rev;
    rev = list;
    list = next;
  }
  while (rev) {
    hc_resolve_job *j = rev;
    rev = j->next;
    /* A callback may cancel later jobs of this same batch: cancelled is read only here. */
    if (!j->cancelled) j->cb(j->data, j->err, j->addrs, j->naddrs);
    free(j);
  }
}

hc_resolver *hc_resolver_new(hc_loop *loop) {
  hc_resolver *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->loop = loop;
  r->queue_tail = &r->queue;
  r->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (r->efd < 0) { free(r); return NULL; }
  if (pthread_mutex_init(&r->mu, NULL) || pthread_cond_init(&r->cv, NULL)) {
    close(r->efd);
    free(r);
    errno = ENOMEM;
    return NULL;
  }
  r->w.fd = r->efd;
  r->w.cb = on_done;
  r->w.data = r;
  if (hc_loop_watch(loop, &r->w, EPOLLIN)) {
    int e = errno;
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    close(r->efd);
    free(r);
    errno = e;
    return NULL;
  }
  return r;
}

void hc_resolver_free(hc_resolver *r) {
  if (!r) return;
  pthread_mutex_lock(&r->mu);
  r->stopping = 1;
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
  for (int i = 0; i < r->nthreads; i++) pthread_join(r->threads[i], NULL);
  hc_loop_unwatch(r->loop, &r->w);
  for (hc_resolve_job *j = r->queue, *n; j; j = n) { n = j->next; free(j); }
  for (hc_resolve_job *j = r->done, *n; j; j = n) { n = j->next; free(j); }
  pthread_cond_destroy(&r->cv);
  pthread_mutex_destroy(&r->mu);
  close(r->efd);
  free(r);
}

static int start_worker(hc_resolver *r) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);   /* the new thread inherits "everything blocked" */
  int rc = pthread_create(&r->threads[r->nthreads], NULL, worker, r);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc) return -1;
  r->nthreads++;
  return 0;
}

int hc_resolver_submit(hc_resolver *r, const char *name, hc_resolve_cb cb, void *data,
                       hc_resolve_job **job) {
  size_t n = strlen(name);
  if (n == 0 || n > HC_RESOLVER_NAME_MAX) { errno = EINVAL; return -1; }
  hc_resolve_job *j = calloc(1, sizeof *j);
  if (!j) { errno = ENOMEM; return -1; }
  memcpy(j->name, name, n + 1);
  j->cb = cb;
  j->data = data;
  pthread_mutex_lock(&r->mu);
  int queued = 0;
  for (hc_resolve_job *q = r->queue; q; q = q->next) queued++;
  if (r->idle <= queued && r->nthreads < HC_RESOLVER_THREADS && start_worker(r) && r->nthreads == 0) {
    pthread_mutex_unlock(&r->mu);
    free(j);
    errno = EAGAIN;
    return -1;
  }
  *r->queue_tail = j;
  r->queue_tail = &j->next;
  pthread_cond_signal(&r->cv);
  pthread_mutex_unlock(&r->mu);
  *job = j;
  return 0;
}

void hc_resolver_cancel(hc_resolver *r, hc_resolve_job *job) {
  pthread_mutex_lock(&r->mu);
  job->cancelled = 1;
  pthread_mutex_unlock(&r->mu);
}

/* }===== */
