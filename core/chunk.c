/*
** chunk.c: a process-wide cache of compiled Lua chunks (see chunk.h).
**
** Keyed by the chunk name and the exact source text (a hash to find, a full compare to match),
** holding the bytecode lua_dump wrote for the function the parser made of that text, debug
** information kept (error messages and tracebacks name the same lines). Bytecode is never
** accepted from anywhere else: a text is parsed, and only that parse's dump is reloaded. The
** cache is bounded (HC_CHUNK_CACHE_MAX bytes of text, names and bytecode); past the bound new
** texts are simply parsed every time. One mutex: runtimes in several threads share it.
*/
#include "chunk.h"

#include <lauxlib.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define HC_CHUNK_CACHE_MAX (16u << 20)
#define NBUCKETS 256

typedef struct entry {
  struct entry *next;
  uint64_t hash;
  size_t nname, nsrc, ncode;
  char *name, *src, *code;
} entry;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static entry *buckets[NBUCKETS];
static size_t held, hits, misses;

/* A word at a time: texts are tens of KiB, hashed on every load. */
static uint64_t hash_bytes(uint64_t h, const char *p, size_t n) {
  const uint64_t m = 0x9E3779B97F4A7C15ull;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, p + i, 8);
    h = (h ^ w) * m;
    h ^= h >> 29;
  }
  for (; i < n; i++) h = (h ^ (unsigned char)p[i]) * m;
  return h ^ (h >> 32) ^ n;
}

static entry *find(uint64_t h, const char *name, size_t nname, const char *src, size_t nsrc) {
  for (entry *e = buckets[h % NBUCKETS]; e; e = e->next)
    if (e->hash == h && e->nname == nname && e->nsrc == nsrc &&
        memcmp(e->name, name, nname) == 0 && memcmp(e->src, src, nsrc) == 0)
      return e;
  return NULL;
}

typedef struct { const char *p; size_t n; } reader_state;

static const char *read_all(lua_State *L, void *ud, size_t *size) {
  (void)L;
  reader_state *r = ud;
  *size = r->n;
  r->n = 0;
  return *size ? r->p : NULL;
}

typedef struct { char *p; size_t n, cap; int oom; } dump_buf;

static int write_dump(lua_State *L, const void *p, size_t sz, void *ud) {
  (void)L;
  dump_buf *b = ud;
  if (b->oom) return 1;
  if (sz > b->cap - b->n) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->n < sz) cap *= 2;
    char *np = realloc(b->p, cap);
    if (!np) { b->oom = 1; return 1; }
    b->p = np;
    b->cap = cap;
  }
  memcpy(b->p + b->n, p, sz);
  b->n += sz;
  return 0;
}

static char *dup_bytes(const char *p, size_t n) {
  char *d = malloc(n ? n : 1);
  if (d && n) memcpy(d, p, n);
  return d;
}

int hc_chunk_load(lua_State *L, const char *src, size_t len, const char *name) {
  size_t nname = strlen(name);
  uint64_t h = hash_bytes(hash_bytes(0x6A09E667F3BCC908ull, name, nname), src, len);
  pthread_mutex_lock(&lock);
  entry *e = find(h, name, nname, src, len);
  if (e) {
    reader_state r = {e->code, e->ncode};
    int st = lua_load(L, read_all, &r, name, "b");
    if (st == LUA_OK) hits++;
    pthread_mutex_unlock(&lock);
    if (st != LUA_ERRMEM) return st;
    lua_pop(L, 1);   /* out of memory undumping: the parse below says the same, or succeeds */
  } else {
    misses++;
    pthread_mutex_unlock(&lock);
  }
  int st = luaL_loadbufferx(L, src, len, name, "t");
  if (st != LUA_OK) return st;
  dump_buf b = {NULL, 0, 0, 0};
  if (lua_dump(L, write_dump, &b, 0) != 0 || b.oom) { free(b.p); return LUA_OK; }
  pthread_mutex_lock(&lock);
  size_t cost = nname + len + b.n + sizeof(entry);
  if (!find(h, name, nname, src, len) && held + cost <= HC_CHUNK_CACHE_MAX) {
    entry *n = calloc(1, sizeof *n);
    char *nm = dup_bytes(name, nname), *sc = dup_bytes(src, len);
    if (n && nm && sc) {
      n->hash = h;
      n->nname = nname;
      n->nsrc = len;
      n->ncode = b.n;
      n->name = nm;
      n->src = sc;
      n->code = b.p;
      b.p = NULL;
      n->next = buckets[h % NBUCKETS];
      buckets[h % NBUCKETS] = n;
      held += cost;
      n = NULL;
      nm = sc = NULL;
    }
    free(n);
    free(nm);
    free(sc);
  }
  pthread_mutex_unlock(&lock);
  free(b.p);
  return LUA_OK;
}

void hc_chunk_stats(size_t *h, size_t *m, size_t *bytes) {
  pthread_mutex_lock(&lock);
  if (h) *h = hits;
  if (m) *m = misses;
  if (bytes) *bytes = held;
  pthread_mutex_unlock(&lock);
}

void hc_chunk_clear(void) {
  pthread_mutex_lock(&lock);
  for (size_t i = 0; i < NBUCKETS; i++) {
    while (buckets[i]) {
      entry *e = buckets[i];
      buckets[i] = e->next;
      free(e->name);
      free(e->src);
      free(e->code);
      free(e);
    }
  }
  held = hits = misses = 0;
  pthread_mutex_unlock(&lock);
}
