/*
** resolver.h: name resolution off the loop thread. getaddrinfo(3) blocks for as long as DNS
** takes, so it runs on a few worker threads; answers come back through an eventfd the loop
** watches, and the callback runs on the loop thread.
*/
#ifndef HC_RESOLVER_H
#define HC_RESOLVER_H

#include <netdb.h>

#include "loop.h"

#define HC_RESOLVER_THREADS 4     /* workers at most, started on first need */
#define HC_RESOLVER_MAX_ADDRS 16  /* addresses kept per answer */
#define HC_RESOLVER_NAME_MAX 253

typedef struct hc_resolver hc_resolver;
typedef struct hc_resolve_job hc_resolve_job;

/* The answer, on the loop thread: err is 0 or an errno value (ENOENT: no such name, EAGAIN:
** temporary failure); addrs are AF_INET/AF_INET6 socket addresses in resolver order. */
typedef void (*hc_resolve_cb)(void *data, int err, const struct sockaddr_storage *addrs, int naddrs);

hc_resolver *hc_resolver_new(hc_loop *loop);     /* NULL with errno */
/* Blocks until every worker has finished its current lookup (bounded by the system resolver's
** own timeouts); no callback runs after it starts. */
void hc_resolver_free(hc_resolver *r);
/* Queue a lookup of name (already checked by the caller: a plain host name). 0, or -1 with
** errno (ENOMEM, EAGAIN when no worker could be started). *job identifies it for cancel. */
int hc_resolver_submit(hc_resolver *r, const char *name, hc_resolve_cb cb, void *data,
                       hc_resolve_job **job);
/* The callback of a queued or running job will never run (its caller went away). Only for a
** job whose callback has not run yet: the job is freed right after its callback. */
void hc_resolver_cancel(hc_resolver *r, hc_resolve_job *job);

#endif
