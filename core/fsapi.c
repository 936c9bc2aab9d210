/*
** fsapi.c: fs.* and io.* primitives for handlers (ctx.fs, ctx.io) and base64 (ctx.base64).
**
** A guest path is absolute; the longest mount prefix on a component boundary names the
** capability and the rest is resolved beneath it (capdir.c). Results follow the contract;
** failures return nil, ERRNO, message, kind ("os" -32000, "refused" -32001, "limit" -32002) and
** the glue turns them into error objects. Messages name only what the guest sent.
** Handles (files and directory streams) live in their session, behind random 64-bit tokens.
*/
#include "fsapi.h"
#include "base64.h"
#include "capdir.h"
#include "internal.h"
#include "json.h"
#include "socket.h"
#include "stream.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <signal.h>
#include <unistd.h>

#define FS_LIST_MAX 10000          /* entries one page may hold */
#define HC_PEEK_MAX 65536          /* fs.read lengths served by a single pread (peek_pread) */
#define HC_DIRECT_MAX 16384        /* base64 fs.read lengths read straight into their text */

typedef struct hc_mount {
  char *guest;
  size_t glen;
  char *host;
  hc_capdir cap;                   /* opened lazily: an idle tenant holds no fds */
  int opened;
  int ephemeral;                   /* each session works in a fresh subdirectory of it */
  size_t index;
  int64_t quota;                   /* 0, or the most bytes its regular files may hold */
  int64_t used;                    /* counted at first need, then kept by every change */
  int used_known;
} hc_mount;

#define HC_EQUOTA (HC_EESCAPE + 1)   /* internal: the change would pass the mount's quota */

#define EPH_PREFIX ".hc-session-"   /* + pid-session-random: per-session dirs of ephemeral mounts */


static hc_tenant *tenant_of(lua_State *L) {
  void *ud;
  lua_getallocf(L, &ud);
  return ud;
}

/* {===== failures ===== */


static int fail(lua_State *L, int err, const char *what) {
  const char *kind = "os", *name;
  char msg[512];
  if (err == -HC_EQUOTA) {
    snprintf(msg, sizeof msg, "%.400s: over the mount's quota", what);
    return hc_fail_limit(L, "quota", msg);
  }
  if (err == -HC_EESCAPE) {
    kind = "refused";
    name = "EPERM";
    snprintf(msg, sizeof msg, "%.400s: reaches outside the capability", what);
  } else if (err == -EROFS) {
    kind = "refused";
    name = "EROFS";
    snprintf(msg, sizeof msg, "%.400s: read-only", what);
  } else {
    name = strerrorname_np(-err);
    if (!name) name = "EIO";
    snprintf(msg, sizeof msg, "%.400s: %s", what, strerror(-err));
  }
  lua_pushnil(L);
  lua_pushstring(L, name);
  lua_pushstring(L, msg);
  lua_pushstring(L, kind);
  return 4;
}


/* }===== */

/* {===== mounts ===== */

/* Session directories left by a runtime that died: removed at start. A directory whose
** process is still alive belongs to another runtime sharing the mount, and stays. */
static void remove_leftovers(const hc_capdir *root) {
  int fd = openat(root->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  DIR *d = fdopendir(fd);
  if (!d) { close(fd); return; }
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (strncmp(de->d_name, EPH_PREFIX, strlen(EPH_PREFIX)) != 0) continue;
    long pid = strtol(de->d_name + strlen(EPH_PREFIX), NULL, 10);
    if (pid > 0 && (pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH)) continue;
    hc_capdir_remove_all(root, de->d_name);
  }
  closedir(d);
}

/* set_mounts({ {guest=, path=, perms=, ephemeral=, quota=}, ... }) */
static int fs_set_mounts(lua_State *L) {
  hc_tenant *t = tenant_of(L);
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
  hc_fsapi_free(t);
  t->mounts = calloc((size_t)n + 1, sizeof(hc_mount));
  if (!t->mounts) return luaL_error(L, "out of memory");
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, 1, i);
    lua_getfield(L, -1, "guest");
    lua_getfield(L, -2, "path");
    lua_getfield(L, -3, "perms");
    lua_getfield(L, -4, "ephemeral");
    lua_getfield(L, -5, "quota");
    if (lua_toboolean(L, -2) && strcmp(lua_tostring(L, -3), "rw") != 0)
      return luaL_error(L, "mounts[\"%s\"].ephemeral: needs perms = \"rw\"", lua_tostring(L, -5));
    hc_mount *m = &((hc_mount *)t->mounts)[t->nmounts];
    m->guest = strdup(lua_tostring(L, -5));
    m->host = strdup(lua_tostring(L, -4));
    if (!m->guest || !m->host) { free(m->guest); free(m->host); return luaL_error(L, "out of memory"); }
    m->glen = strlen(m->guest);
    m->cap.fd = -1;
    m->cap.ro = strcmp(lua_tostring(L, -3), "ro") == 0;
    m->cap.resolver = (hc_resolver)t->rt->cfg.resolver;
    m->ephemeral = lua_toboolean(L, -2);
    m->quota = lua_isinteger(L, -1) ? (int64_t)lua_tointeger(L, -1) : 0;
    m->index = t->nmounts;
    t->nmounts++;
    lua_pop(L, 6);
    if (m->ephemeral) {
      int r = hc_capdir_open(&m->cap, m->host, 0, m->cap.resolver);
      if (r) return luaL_error(L, "mounts[\"%s\"]: %s", m->guest, strerrorname_np(-r));
      m->opened = 1;
      remove_leftovers(&m->cap);
    }
  }
  return 0;
}

void hc_fsapi_free(hc_tenant *t) {
  for (size_t i = 0; i < t->nmounts; i++) {
    hc_mount *m = &((hc_mount *)t->mounts)[i];
    if (m->opened) hc_capdir_close(&m->cap);
    free(m->guest);
    free(m->host);
  }
  free(t->mounts);
  t->mounts = NULL;
  t->nmounts = 0;
}

typedef struct gpath {
  char norm[HC_PATH_MAX + 2];      /* the guest path with "//" and "/./" collapsed */
  hc_mount *m;                     /* NULL: the root "/" (lists the mounts) */
  hc_capdir *cap;                  /* the mount's, or this session's directory of an ephemeral one */
  const char *rel;
} gpath;

/* This session's own directory of an ephemeral mount, made at first use. */
static int session_dir(hc_tenant *t, hc_mount *m, hc_capdir **out) {
  if (!t->current) return -EPERM;
  hc_session *s = t->current->s;
  if (!s->eph) {
    s->eph = calloc(t->nmounts, sizeof(hc_capdir));
    if (!s->eph) return -ENOMEM;
    s->neph = t->nmounts;
    for (size_t i = 0; i < t->nmounts; i++) ((hc_capdir *)s->eph)[i].fd = -1;
  }
  hc_capdir *c = &((hc_capdir *)s->eph)[m->index];
  if (c->fd < 0) {
    uint32_t rnd;
    if (getrandom(&rnd, sizeof rnd, 0) != sizeof rnd) return -EIO;
    snprintf(c->name, sizeof c->name, EPH_PREFIX "%ld-%llu-%08x", (long)getpid(),
             (unsigned long long)s->id, rnd);
    if (mkdirat(m->cap.fd, c->name, 0700) != 0) return -errno;
    c->fd = openat(m->cap.fd, c->name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (c->fd < 0) return -errno;
    c->ro = 0;
    c->resolver = m->cap.resolver;
  }
  *out = c;
  return 0;
}

/* Map a guest path to (mount, path beneath it). 0 or -errno. */
static int resolve_guest(lua_State *L, int idx, gpath *g) {
  hc_tenant *t = tenant_of(L);
  size_t len;
  const char *raw = luaL_checklstring(L, idx, &len);
  if (len == 0) return -ENOENT;
  int r = hc_capdir_check(raw, len);
  if (r) return r;
  if (raw[0] != '/') return -EINVAL;
  /* "/out//x" and "/out/./x" are "/out/x": the mount they name must not depend on spelling.
  ** ".." stays: whether it leaves a mount is for the resolver to say. */
  char *p = g->norm;
  size_t k = 0;
  for (size_t i = 0; i < len;) {
    while (i < len && raw[i] == '/') i++;
    size_t s = i;
    while (i < len && raw[i] != '/') i++;
    if (i == s || (i - s == 1 && raw[s] == '.')) continue;
    p[k++] = '/';
    memcpy(p + k, raw + s, i - s);
    k += i - s;
  }
  if (k == 0) p[k++] = '/';
  else if (raw[len - 1] == '/' || (len >= 2 && raw[len - 1] == '.' && raw[len - 2] == '/')) p[k++] = '/';
  p[k] = '\0';
  len = k;
  hc_mount *best = NULL;
  for (size_t i = 0; i < t->nmounts; i++) {
    hc_mount *m = &((hc_mount *)t->mounts)[i];
    if (len >= m->glen && memcmp(p, m->guest, m->glen) == 0 && (p[m->glen] == '/' || p[m->glen] == '\0') &&
        (!best || m->glen > best->glen))
      best = m;
  }
  if (!best) {
    if (len == 1) { g->m = NULL; g->cap = NULL; g->rel = ""; return 0; }
    return -HC_EESCAPE;
  }
  if (!best->opened) {
    r = hc_capdir_open(&best->cap, best->host, best->cap.ro, best->cap.resolver);
    if (r) return r == -ENOENT ? -ENOENT : r;
    best->opened = 1;
  }
  const char *rel = p + best->glen;
  while (*rel == '/') rel++;
  /* a trailing slash after the mount point itself ("/in/") keeps its meaning: the root */
  g->m = best;
  g->cap = &best->cap;
  g->rel = rel;
  if (best->ephemeral && (r = session_dir(tenant_of(L), best, &g->cap)) != 0) return r;
  return 0;
}

void hc_fsapi_each_mount(hc_tenant *t, void (*fn)(void *ud, const char *host, int rw), void *ud) {
  for (size_t i = 0; i < t->nmounts; i++) {
    hc_mount *m = &((hc_mount *)t->mounts)[i];
    fn(ud, m->host, !m->cap.ro);
  }
}

int hc_fsapi_dirfd(lua_State *L, int idx) {
  gpath g;
  int r = resolve_guest(L, idx, &g);
  if (r) return r;
  if (!g.m) return -HC_EESCAPE;   /* "/" holds only mount points: not a working directory */
  return hc_capdir_openat(g.cap, g.rel, O_PATH | O_DIRECTORY, 0);
}

#define GUEST(idx, g) do { int e_ = resolve_guest(L, idx, &(g)); \
  if (e_) return fail(L, e_, lua_tostring(L, idx)); } while (0)
#define NOT_ROOT(g, idx) do { if (!(g).m) return fail(L, -HC_EESCAPE, lua_tostring(L, idx)); } while (0)

/* }===== */

/* {===== results ===== */

static const char *type_name(mode_t m) {
  if (S_ISREG(m)) return "file";
  if (S_ISDIR(m)) return "dir";
  if (S_ISLNK(m)) return "symlink";
  if (S_ISFIFO(m)) return "fifo";
  if (S_ISSOCK(m)) return "socket";
  if (S_ISCHR(m)) return "char";
  return "block";
}

static lua_Integer ns(struct timespec ts) {
  return (lua_Integer)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void push_stat(lua_State *L, const struct stat *st) {
  lua_createtable(L, 0, 7);
  lua_pushstring(L, type_name(st->st_mode));
  lua_setfield(L, -2, "type");
  lua_pushinteger(L, (lua_Integer)st->st_size);
  lua_setfield(L, -2, "size");
  lua_pushinteger(L, (lua_Integer)(st->st_mode & 07777));
  lua_setfield(L, -2, "mode");
  lua_pushinteger(L, (lua_Integer)st->st_nlink);
  lua_setfield(L, -2, "nlink");
  lua_pushinteger(L, ns(st->st_mtim));
  lua_setfield(L, -2, "mtime_ns");
  lua_pushinteger(L, ns(st->st_atim));
  lua_setfield(L, -2, "atime_ns");
  lua_pushinteger(L, ns(st->st_ctim));
  lua_setfield(L, -2, "ctime_ns");
}

static void push_array(lua_State *L, int n) {
  lua_createtable(L, n, 0);
  hc_json_push_array_mt(L);
  lua_setmetatable(L, -2);
}

/* }===== */

/* {===== quotas: bytes held by regular files under a mount ===== */

static int64_t tree_bytes(int dirfd, int depth) {
  if (depth > 2048) return 0;
  int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return 0;
  DIR *d = fdopendir(fd);
  if (!d) { close(fd); return 0; }
  int64_t sum = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
    struct stat st;
    if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (S_ISREG(st.st_mode)) {
      sum += st.st_size;
    } else if (S_ISDIR(st.st_mode)) {
      int sub = openat(dirfd, de->d_name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub >= 0) { sum += tree_bytes(sub, depth + 1); close(sub); }
    }
  }
  closedir(d);
  return sum;
}

/* Bytes the entry at rel holds: a file's size, a directory's files' (recursive), 0 else. */
static int64_t entry_bytes(hc_capdir *c, const char *rel) {
  struct stat st;
  if (hc_capdir_stat(c, rel, 0, &st) != 0) return 0;
  if (S_ISREG(st.st_mode)) return st.st_size;
  if (!S_ISDIR(st.st_mode)) return 0;
  int fd = hc_capdir_openat(c, rel, O_PATH | O_DIRECTORY | O_NOFOLLOW, 0);
  if (fd < 0) return 0;
  int64_t n = tree_bytes(fd, 0);
  close(fd);
  return n;
}

/* May the mount grow by delta bytes? 0, or -HC_EQUOTA. */
static int quota_admit(hc_mount *m, int64_t delta) {
  if (!m || !m->quota) return 0;
  if (!m->used_known) {
    m->used = tree_bytes(m->cap.fd, 0);
    m->used_known = 1;
  }
  return delta > 0 && m->used + delta > m->quota ? -HC_EQUOTA : 0;
}

static void quota_account(hc_mount *m, int64_t delta) {
  if (!m || !m->quota || !m->used_known) return;
  m->used += delta;
  if (m->used < 0) m->used = 0;
}

static int64_t file_size(int fd) {
  struct stat st;
  return fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? (int64_t)st.st_size : 0;
}

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* }===== */

/* {===== path operations ===== */

static int fs_stat(lua_State *L) {
  gpath g;
  GUEST(1, g);
  int follow = lua_isnoneornil(L, 2) || lua_toboolean(L, 2);
  struct stat st;
  if (!g.m) {   /* "/": a directory holding the mount points */
    memset(&st, 0, sizeof st);
    st.st_mode = S_IFDIR | 0555;
    st.st_nlink = 2;
    push_stat(L, &st);
    return 1;
  }
  int r = hc_capdir_stat(g.cap, g.rel, follow, &st);
  if (r) return fail(L, r, lua_tostring(L, 1));
  push_stat(L, &st);
  return 1;
}

/* Lua allocations can raise (the tenant's memory cap). A primitive holding an fd or a directory
** stream of its own makes them through these protected calls and releases what it holds before
** the error goes on: a guest must not be able to pile up host fds with answers that never fit. */
static int new_buffer_p(lua_State *L) {
  size_t cap = (size_t)lua_tointeger(L, 1);
  if (lua_toboolean(L, 2)) hc_json_push_base64(L, cap);
  else lua_newuserdatauv(L, cap, 0);
  return 1;
}

static void release(int fd, DIR *d) {
  if (d) closedir(d);
  else if (fd >= 0) close(fd);
}

/* cap bytes on the stack: a base64 hostcall.text when text, else a plain buffer. When the
** allocation raises, fd (or d) is released first; -1 and NULL hold nothing. */
static void *push_buffer(lua_State *L, size_t cap, int text, int fd, DIR *d) {
  if (fd < 0 && !d) return text ? (void *)hc_json_push_base64(L, cap) : lua_newuserdatauv(L, cap, 0);
  lua_pushcfunction(L, new_buffer_p);
  lua_pushinteger(L, (lua_Integer)cap);
  lua_pushboolean(L, text);
  if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
    release(fd, d);
    lua_error(L);
  }
  return lua_touserdata(L, -1);
}

/* Read up to len bytes at off (or sequentially when off < 0) into a Lua string; eof per the
** contract: regular files by size, anything else by a read of 0 bytes. With b64, the result is
** the bytes' base64 as a JSON text, and the byte count is a third result. With own, the fd is
** the caller's to drop: it is closed here, before anything that could raise. */
static int read_into(lua_State *L, int fd, int own, lua_Integer off, lua_Integer len,
                     const struct stat *known, int b64) {
  hc_tenant *t = tenant_of(L);
  if (len > t->limits.read_bytes) {
    if (own) close(fd);
    return hc_fail_limit(L, "size", "read longer than limits.read_bytes");
  }
  /* base64: a text (core/json.c) holding the bytes, which the encoder writes as base64 straight
  ** into the answer. Plain: a buffer made a Lua string at the end. */
  hc_json_text *txt = NULL;
  char *p;
  if (b64) {
    txt = push_buffer(L, (size_t)len, 1, own ? fd : -1, NULL);
    p = txt->p;
  } else {
    p = push_buffer(L, (size_t)len, 0, own ? fd : -1, NULL);
  }
  size_t got = 0;
  int zero = 0, err = 0;
  while ((lua_Integer)got < len) {
    ssize_t n = off >= 0 ? pread(fd, p + got, (size_t)len - got, (off_t)(off + (lua_Integer)got))
                         : read(fd, p + got, (size_t)len - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      if ((errno == EAGAIN || errno == EWOULDBLOCK) && got > 0) break;
      err = errno;
      break;
    }
    if (n == 0) { zero = 1; break; }
    got += (size_t)n;
  }
  int eof = 0;
  if (!err) {
    struct stat st;
    /* A regular file opened by path was stat'ed just before the read; a size change in between
    ** only moves eof, which is a snapshot anyway. */
    if (known) st = *known;
    if ((known || fstat(fd, &st) == 0) && S_ISREG(st.st_mode)) {
      lua_Integer end = off >= 0 ? off + (lua_Integer)got : (lua_Integer)lseek(fd, 0, SEEK_CUR);
      eof = end >= (lua_Integer)st.st_size;
    } else {
      eof = zero && got == 0;
    }
  }
  if (own) close(fd);
  if (err) {
    lua_pop(L, 1);
    return fail(L, -err, "read");
  }
  if (b64) {
    hc_json_text_set_bytes(txt, got);
  } else {
    lua_pushlstring(L, p, got);
    lua_remove(L, -2);
  }
  lua_pushboolean(L, eof);
  if (!b64) return 2;
  lua_pushinteger(L, (lua_Integer)got);
  return 3;
}

/* A read of at most HC_PEEK_MAX bytes from a file opened by path: one pread of len + 1 bytes
** into the runtime's buffer. More than len back: not at the end; fewer: the end (a pread on a
** seekable file comes back short only there). That spares the fstat a size would cost, and a
** directory answers EISDIR by itself. The count, -errno, or -ESPIPE with nothing consumed (a
** FIFO, or a length the buffer cannot hold): then the caller takes the fstat way. */
static ssize_t peek_pread(char *buf, int fd, lua_Integer off, lua_Integer len) {
  if (len > HC_PEEK_MAX || !buf) return -ESPIPE;
  ssize_t n;
  do n = pread(fd, buf, (size_t)len + 1, (off_t)off);
  while (n < 0 && errno == EINTR);
  return n < 0 ? -errno : n;
}

static char *peek_buffer(hc_runtime *rt) {
  if (!rt->peek) rt->peek = malloc(HC_PEEK_MAX + 1);
  return rt->peek;
}

/* What peek_pread read, as read_into's results (the fd already closed). */
static int push_peeked(lua_State *L, const char *bytes, size_t n, lua_Integer len, int b64) {
  size_t got = n > (size_t)len ? (size_t)len : n;
  if (b64) {
    hc_json_text *txt = hc_json_push_base64(L, got);
    memcpy(txt->p, bytes, got);
    hc_json_text_set_bytes(txt, got);
  } else {
    lua_pushlstring(L, bytes, got);
  }
  lua_pushboolean(L, n <= (size_t)len);
  if (!b64) return 2;
  lua_pushinteger(L, (lua_Integer)got);
  return 3;
}

/* The optional encoding argument of the read primitives: nil, "bytes" or "utf8" (files: the
** bytes, trimmed by the handler), or "base64". */
static int want_base64(lua_State *L, int idx) {
  static const char *const names[] = {"bytes", "base64", "utf8", NULL};
  return luaL_checkoption(L, idx, "bytes", names) == 1;
}

static int fs_read(lua_State *L) {
  gpath g;
  GUEST(1, g);
  NOT_ROOT(g, 1);
  lua_Integer off = luaL_optinteger(L, 2, 0), len = luaL_optinteger(L, 3, 65536);
  int b64 = want_base64(L, 4);
  if (off < 0 || len < 0) return fail(L, -EINVAL, lua_tostring(L, 1));
  hc_tenant *t = tenant_of(L);
  if (len > t->limits.read_bytes) return hc_fail_limit(L, "size", "read longer than limits.read_bytes");
  /* A small base64 read goes straight into its text, made before the open: if the tenant's
  ** memory cap refuses it, nothing is held yet. Others peek through the runtime's buffer. */
  hc_json_text *direct = b64 && len < HC_DIRECT_MAX ? hc_json_push_base64(L, (size_t)len + 1) : NULL;
  int fd = hc_capdir_openat(g.cap, g.rel, O_RDONLY | O_NONBLOCK | O_NOCTTY, 0);
  if (fd < 0) return fail(L, fd, lua_tostring(L, 1));
  ssize_t n = peek_pread(direct ? direct->p : peek_buffer(t->rt), fd, off, len);
  if (n != -ESPIPE) {
    close(fd);
    if (n < 0) return fail(L, (int)n, lua_tostring(L, 1));
    if (!direct) return push_peeked(L, t->rt->peek, (size_t)n, len, b64);
    hc_json_text_set_bytes(direct, (size_t)n > (size_t)len ? (size_t)len : (size_t)n);
    lua_pushboolean(L, (size_t)n <= (size_t)len);
    lua_pushinteger(L, (lua_Integer)direct->raw);
    return 3;
  }
  if (direct) lua_pop(L, 1);
  struct stat st;
  if (fstat(fd, &st) != 0) { int e = errno; close(fd); return fail(L, -e, lua_tostring(L, 1)); }
  if (S_ISDIR(st.st_mode)) { close(fd); return fail(L, -EISDIR, lua_tostring(L, 1)); }
  /* A FIFO has no offsets: offset 0 reads what is there (non-blocking), any other is ESPIPE. */
  if (off == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))) off = -1;
  if (S_ISREG(st.st_mode)) {   /* allocate what the file holds, not what was asked */
    lua_Integer avail = (lua_Integer)st.st_size > off ? (lua_Integer)st.st_size - off : 0;
    if (len > avail) len = avail;
  } else if (len > 65536) {
    len = 65536;   /* a FIFO or device: one buffer at a time */
  }
  return read_into(L, fd, 1, off, len, &st, b64);
}

/* write(path, data, offset, append, create, truncate, exclusive) */
static int fs_write(lua_State *L) {
  gpath g;
  GUEST(1, g);
  NOT_ROOT(g, 1);
  size_t n;
  const char *data = luaL_checklstring(L, 2, &n);
  int has_off = !lua_isnoneornil(L, 3);
  lua_Integer off = has_off ? luaL_checkinteger(L, 3) : 0;
  int append = lua_toboolean(L, 4), create = lua_toboolean(L, 5), trunc = lua_toboolean(L, 6),
      excl = lua_toboolean(L, 7);
  if (off < 0) return fail(L, -EINVAL, lua_tostring(L, 1));
  if (g.cap->ro) return fail(L, hc_capdir_refuse_ro(g.cap, g.rel), lua_tostring(L, 1));
  if (has_off && append) return fail(L, -EINVAL, lua_tostring(L, 1));
  int flags = O_WRONLY | O_NONBLOCK | O_NOCTTY | (create ? O_CREAT : 0) | (excl ? O_EXCL : 0) |
              (trunc ? O_TRUNC : 0) | (append ? O_APPEND : 0);
  int64_t old = 0;
  if (g.m->quota) {   /* refuse before anything changes: the open may already truncate */
    struct stat ost;
    if (hc_capdir_stat(g.cap, g.rel, 1, &ost) == 0 && S_ISREG(ost.st_mode)) old = ost.st_size;
    int64_t end = (has_off ? off : 0) + (int64_t)n;
    int64_t want = trunc ? end : append ? old + (int64_t)n : max64(old, end);
    int q = quota_admit(g.m, want - old);
    if (q) return fail(L, q, lua_tostring(L, 1));
  }
  int fd = hc_capdir_openat(g.cap, g.rel, flags, 0644);
  if (fd < 0) return fail(L, fd, lua_tostring(L, 1));
  size_t done = 0;
  int err = 0;
  while (done < n) {
    ssize_t w = has_off ? pwrite(fd, data + done, n - done, (off_t)(off + (lua_Integer)done))
                        : write(fd, data + done, n - done);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) { err = -errno; break; }
    done += (size_t)w;
  }
  if (g.m->quota) quota_account(g.m, file_size(fd) - old);
  close(fd);
  if (err && done == 0) return fail(L, err, lua_tostring(L, 1));
  lua_pushinteger(L, (lua_Integer)done);
  return 1;
}

static int push_entry(lua_State *L, int dirfd, struct dirent *de, int index) {
  lua_createtable(L, 0, 2);
  size_t nl = strlen(de->d_name);
  if (hc_utf8_valid(de->d_name, nl)) {
    lua_pushlstring(L, de->d_name, nl);
  } else {   /* a host-made name that is not UTF-8: shown with U+FFFD for the bad bytes */
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (size_t i = 0; i < nl;) {
      size_t k = 1;
      while (k <= 4 && i + k <= nl && !hc_utf8_valid(de->d_name + i, k)) k++;
      if (k <= 4 && i + k <= nl) { luaL_addlstring(&b, de->d_name + i, k); i += k; }
      else { luaL_addstring(&b, "\xEF\xBF\xBD"); i++; }
    }
    luaL_pushresult(&b);
  }
  lua_setfield(L, -2, "name");
  const char *type;
  switch (de->d_type) {
    case DT_REG: type = "file"; break;
    case DT_DIR: type = "dir"; break;
    case DT_LNK: type = "symlink"; break;
    case DT_FIFO: type = "fifo"; break;
    case DT_SOCK: type = "socket"; break;
    case DT_CHR: type = "char"; break;
    case DT_BLK: type = "block"; break;
    default: {
      struct stat st;
      type = fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 ? type_name(st.st_mode) : "file";
    }
  }
  lua_pushstring(L, type);
  lua_setfield(L, -2, "type");
  lua_rawseti(L, -2, index);
  return 0;
}

/* Read up to limit entries from d into a new array; *more: entries remain. */
static int read_entries(lua_State *L, DIR *d, lua_Integer limit, int *more, long *resume);

typedef struct {
  DIR *d;
  lua_Integer limit;
  int more, r;
  long resume;
} list_job;

static int read_entries_p(lua_State *L) {
  list_job *j = lua_touserdata(L, 1);
  j->r = read_entries(L, j->d, j->limit, &j->more, &j->resume);
  return 1;
}

/* read_entries for a stream the caller owns: closed whatever happens, a raise included. */
static int read_entries_closing(lua_State *L, DIR *d, lua_Integer limit, int *more, long *resume) {
  list_job j = { d, limit, 0, 0, 0 };
  lua_pushcfunction(L, read_entries_p);
  lua_pushlightuserdata(L, &j);
  int st = lua_pcall(L, 1, 1, 0);
  closedir(d);
  if (st != LUA_OK) lua_error(L);
  *more = j.more;
  *resume = j.resume;
  return j.r;
}

static int read_entries(lua_State *L, DIR *d, lua_Integer limit, int *more, long *resume) {
  push_array(L, 0);
  int i = 0;
  *more = 0;
  for (;;) {
    long pos = telldir(d);
    errno = 0;
    struct dirent *de = readdir(d);
    if (!de) { if (errno) return -errno; break; }
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
    if (i == limit) { *more = 1; *resume = pos; seekdir(d, pos); break; }
    push_entry(L, dirfd(d), de, ++i);
  }
  return 0;
}

static int list_root(lua_State *L) {
  hc_tenant *t = tenant_of(L);
  push_array(L, 0);
  int n = 0;
  for (size_t i = 0; i < t->nmounts; i++) {
    const char *gp = ((hc_mount *)t->mounts)[i].guest + 1;
    size_t k = strcspn(gp, "/");
    int dup = 0;
    for (int j = 1; j <= n && !dup; j++) {
      lua_rawgeti(L, -1, j);
      lua_getfield(L, -1, "name");
      dup = strlen(lua_tostring(L, -1)) == k && memcmp(lua_tostring(L, -1), gp, k) == 0;
      lua_pop(L, 2);
    }
    if (dup) continue;
    lua_createtable(L, 0, 2);
    lua_pushlstring(L, gp, k);
    lua_setfield(L, -2, "name");
    lua_pushliteral(L, "dir");
    lua_setfield(L, -2, "type");
    lua_rawseti(L, -2, ++n);
  }
  return 1;
}

/* Cursors are "POSITION.CHECK", the check a keyed mix of the position and the directory's
** inode: a guessed or edited cursor is EBADF, like a guessed handle. */
static uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

/* Each tenant state keys its own cursors: one from another runtime never checks out. */
static uint64_t cursor_key(hc_tenant *t) {
  while (!t->cursor_key && getrandom(&t->cursor_key, sizeof t->cursor_key, 0) != sizeof t->cursor_key) {}
  return t->cursor_key;
}

static uint64_t cursor_check(hc_tenant *t, long pos, ino_t ino, uint64_t session) {
  return mix64(cursor_key(t) ^ mix64((uint64_t)pos) ^ mix64(((uint64_t)ino << 1) ^ mix64(session)));
}

/* list(path, cursor, limit) -> entries, next cursor | nil */
static int fs_list(lua_State *L) {
  gpath g;
  GUEST(1, g);
  if (!g.m) return list_root(L);
  const char *cursor = luaL_optstring(L, 2, NULL);
  lua_Integer limit = luaL_optinteger(L, 3, 1000);
  if (limit < 1 || limit > FS_LIST_MAX) return fail(L, -EINVAL, "limit");
  long pos = 0;
  unsigned long long check = 0;
  if (cursor) {
    char *end;
    errno = 0;
    pos = strtol(cursor, &end, 10);
    if (errno || *end != '.' || end == cursor || pos < 0) return fail(L, -EBADF, "cursor");
    const char *c2 = end + 1;
    check = strtoull(c2, &end, 16);
    if (errno || *end || end == c2) return fail(L, -EBADF, "cursor");
  }
  int fd = hc_capdir_openat(g.cap, g.rel, O_RDONLY | O_DIRECTORY, 0);
  if (fd < 0) return fail(L, fd, lua_tostring(L, 1));
  struct stat dst;
  if (fstat(fd, &dst) != 0) { int e = errno; close(fd); return fail(L, -e, lua_tostring(L, 1)); }
  hc_tenant *t = tenant_of(L);
  uint64_t sid = t->current ? t->current->s->id : 0;   /* a cursor is good in its session only */
  if (cursor && check != cursor_check(t, pos, dst.st_ino, sid)) { close(fd); return fail(L, -EBADF, "cursor"); }
  DIR *d = fdopendir(fd);
  if (!d) { int e = errno; close(fd); return fail(L, -e, lua_tostring(L, 1)); }
  if (cursor) seekdir(d, pos);
  int more;
  long resume = 0;
  int r = read_entries_closing(L, d, limit, &more, &resume);
  if (r) { lua_pop(L, 1); return fail(L, r, lua_tostring(L, 1)); }
  if (more) {
    char text[64];
    snprintf(text, sizeof text, "%ld.%016llx", resume,
             (unsigned long long)cursor_check(t, resume, dst.st_ino, sid));
    lua_pushstring(L, text);
  } else {
    lua_pushnil(L);
  }
  return 2;
}

static int mkdir_parents(const hc_capdir *c, const char *rel, mode_t mode) {
  char part[HC_PATH_MAX + 1];
  size_t len = strlen(rel);
  for (size_t i = 0; i <= len; i++) {
    if (i < len && rel[i] != '/') continue;
    if (i == 0 || rel[i - 1] == '/') continue;
    memcpy(part, rel, i);
    part[i] = '\0';
    size_t b = i;
    while (b && part[b - 1] != '/') b--;
    if (strcmp(part + b, ".") == 0 || strcmp(part + b, "..") == 0) {
      int fd = hc_capdir_openat(c, part, O_PATH | O_DIRECTORY, 0);
      if (fd < 0) return fd;   /* an escape, or a missing directory */
      close(fd);
      continue;
    }
    int r = hc_capdir_mkdir(c, part, mode);
    if (r == -EEXIST) {   /* fine if it is a directory beneath the mount, not a link out */
      struct stat st;
      int s2 = hc_capdir_stat(c, part, 1, &st);
      if (s2) return s2 == -ENOENT ? -EEXIST : s2;
      if (!S_ISDIR(st.st_mode)) return -ENOTDIR;
      continue;
    }
    if (r) return r;
  }
  return 0;
}

static int fs_mkdir(lua_State *L) {
  gpath g;
  GUEST(1, g);
  NOT_ROOT(g, 1);
  int parents = lua_toboolean(L, 2);
  lua_Integer mode = luaL_optinteger(L, 3, 0755);
  if (mode < 0 || mode > 0777) return fail(L, -EINVAL, "mode");
  int r = parents ? (g.cap->ro ? hc_capdir_refuse_ro(g.cap, g.rel) : mkdir_parents(g.cap, g.rel, (mode_t)mode))
                  : hc_capdir_mkdir(g.cap, g.rel, (mode_t)mode);
  if (r) return fail(L, r, lua_tostring(L, 1));
  lua_pushboolean(L, 1);
  return 1;
}

static int fs_remove(lua_State *L) {
  gpath g;
  GUEST(1, g);
  NOT_ROOT(g, 1);
  int64_t bytes = g.m->quota ? entry_bytes(g.cap, g.rel) : 0;
  int r = lua_toboolean(L, 2) ? hc_capdir_remove_all(g.cap, g.rel) : hc_capdir_unlink(g.cap, g.rel);
  if (r) return fail(L, r, lua_tostring(L, 1));
  quota_account(g.m, -bytes);
  lua_pushboolean(L, 1);
  return 1;
}

static int fs_rename(lua_State *L) {
  gpath a, b;
  GUEST(1, a);
  GUEST(2, b);
  NOT_ROOT(a, 1);
  NOT_ROOT(b, 2);
  int overwrite = lua_isnoneornil(L, 3) || lua_toboolean(L, 3);
  int64_t moving = 0, replaced = 0;
  if (a.m->quota || b.m->quota) {
    moving = a.m != b.m ? entry_bytes(a.cap, a.rel) : 0;
    replaced = overwrite ? entry_bytes(b.cap, b.rel) : 0;
    int q = quota_admit(b.m, moving - replaced);
    if (q) return fail(L, q, lua_tostring(L, 2));
  }
  int r = hc_capdir_rename(a.cap, a.rel, b.cap, b.rel, overwrite);
  if (r) return fail(L, r, lua_tostring(L, 1));
  quota_account(a.m, -moving);
  quota_account(b.m, moving - replaced);
  lua_pushboolean(L, 1);
  return 1;
}

static int fs_link(lua_State *L) {
  gpath a, b;
  GUEST(1, a);
  GUEST(2, b);
  NOT_ROOT(a, 1);
  NOT_ROOT(b, 2);
  int r = hc_capdir_link(a.cap, a.rel, b.cap, b.rel);
  if (r) return fail(L, r, lua_tostring(L, 1));
  lua_pushboolean(L, 1);
  return 1;
}

static int fs_truncate(lua_State *L) {
  gpath g;
  GUEST(1, g);
  NOT_ROOT(g, 1);
  lua_Integer len = luaL_checkinteger(L, 2);
  int64_t old = 0;
  if (g.m->quota && len >= 0) {
    struct stat st;
    if (hc_capdir_stat(g.cap, g.rel, 1, &st) == 0 && S_ISREG(st.st_mode)) old = st.st_size;
    int q = quota_admit(g.m, (int64_t)len - old);
    if (q) return fail(L, q, lua_tostring(L, 1));
  }
  int r = hc_capdir_truncate(g.cap, g.rel, (off_t)len);
  if (r) return fail(L, r, lua_tostring(L, 1));
  quota_account(g.m, (int64_t)len - old);
  lua_pushboolean(L, 1);
  return 1;
}

static int fs_symlink(lua_State *L) {
  size_t tl;
  const char *target = luaL_checklstring(L, 1, &tl);
  if (memchr(target, '\0', tl)) return fail(L, -EINVAL, "target");
  gpath g;
  GUEST(2, g);
  NOT_ROOT(g, 2);
  int r = hc_capdir_symlink(g.cap, target, g.rel);
  if (r) return fail(L, r, lua_tostring(L, 2));
  lua_pushboolean(L, 1);
  return 1;
}

static int fs_readlink(lua_State *L) {
  gpath g;
  GUEST(1, g);
  NOT_ROOT(g, 1);
  char buf[HC_PATH_MAX + 1];
  int r = hc_capdir_readlink(g.cap, g.rel, buf, sizeof buf);
  if (r < 0) return fail(L, r, lua_tostring(L, 1));
  lua_pushlstring(L, buf, (size_t)r);
  return 1;
}

static int fs_chmod(lua_State *L) {
  gpath g;
  GUEST(1, g);
  NOT_ROOT(g, 1);
  lua_Integer mode = luaL_checkinteger(L, 2);
  if (mode < 0 || mode > 0777) return fail(L, -EINVAL, "mode");
  int r = hc_capdir_chmod(g.cap, g.rel, (mode_t)mode);
  if (r) return fail(L, r, lua_tostring(L, 1));
  lua_pushboolean(L, 1);
  return 1;
}

static int fs_utimes(lua_State *L) {
  gpath g;
  GUEST(1, g);
  NOT_ROOT(g, 1);
  struct timespec ts[2];
  for (int i = 0; i < 2; i++) {
    if (lua_isnoneornil(L, 2 + i)) {
      ts[i].tv_sec = 0;
      ts[i].tv_nsec = UTIME_OMIT;
    } else {
      lua_Integer v = luaL_checkinteger(L, 2 + i);
      if (v < 0) return fail(L, -EINVAL, "time");
      ts[i].tv_sec = (time_t)(v / 1000000000);
      ts[i].tv_nsec = (long)(v % 1000000000);
    }
  }
  int r = hc_capdir_utimes(g.cap, g.rel, ts);
  if (r) return fail(L, r, lua_tostring(L, 1));
  lua_pushboolean(L, 1);
  return 1;
}

/* }===== */

/* {===== handles ===== */

static hc_session *session_of(lua_State *L) {
  hc_tenant *t = tenant_of(L);
  if (!t->current) luaL_error(L, "not inside a call");
  return t->current->s;
}

/* A file or directory handle into the session's table (core/stream.c). */
static int push_handle(lua_State *L, hc_session *s, int fd, DIR *d, int append, int rd, int wr,
                       hc_mount *m) {
  hc_handle *h = calloc(1, sizeof *h);
  if (!h) {
    if (d) closedir(d);
    else close(fd);
    return fail(L, -ENOMEM, "open");
  }
  h->kind = d ? HC_STREAM_DIR : HC_STREAM_FILE;
  h->fd = fd;
  h->dir = d;
  h->append = append;
  h->readable = rd;
  h->writable = wr;
  h->mount = m;
  return hc_stream_push(L, s, h);
}

void hc_fsapi_session_close(hc_session *s) {
  hc_stream_close_all(s);
  /* An ephemeral mount's session directory goes with the session. */
  for (size_t i = 0; s->eph && i < s->neph && i < s->t->nmounts; i++) {
    hc_capdir *c = &((hc_capdir *)s->eph)[i];
    if (c->fd < 0) continue;
    hc_mount *m = &((hc_mount *)s->t->mounts)[i];
    int64_t bytes = m->quota ? tree_bytes(c->fd, 0) : 0;
    hc_capdir_close(c);
    if (hc_capdir_remove_all(&m->cap, c->name) == 0) quota_account(m, -bytes);
  }
  free(s->eph);
  s->eph = NULL;
  s->neph = 0;
}

static int fs_open(lua_State *L) {
  hc_session *s = session_of(L);
  gpath g;
  GUEST(1, g);
  NOT_ROOT(g, 1);
  const char *mode = luaL_checkstring(L, 2);
  int flags, rd = 0, wr = 0, append = 0;
  if (strcmp(mode, "r") == 0) { flags = O_RDONLY; rd = 1; }
  else if (strcmp(mode, "w") == 0) { flags = O_WRONLY | O_CREAT | O_TRUNC; wr = 1; }
  else if (strcmp(mode, "a") == 0) { flags = O_WRONLY | O_CREAT | O_APPEND; wr = append = 1; }
  else if (strcmp(mode, "rw") == 0) { flags = O_RDWR; rd = wr = 1; }
  else return fail(L, -EINVAL, "mode");
  if (!lua_isnoneornil(L, 3)) flags = lua_toboolean(L, 3) ? flags | O_CREAT : flags & ~O_CREAT;
  if (!lua_isnoneornil(L, 4)) flags = lua_toboolean(L, 4) ? flags | O_TRUNC : flags & ~O_TRUNC;
  if (lua_toboolean(L, 5)) flags |= O_EXCL | O_CREAT;
  if (g.cap->ro && (wr || (flags & (O_CREAT | O_TRUNC))))
    return fail(L, hc_capdir_refuse_ro(g.cap, g.rel), lua_tostring(L, 1));
  int64_t old = 0;
  if (g.m->quota && (flags & O_TRUNC)) {
    struct stat ost;
    if (hc_capdir_stat(g.cap, g.rel, 1, &ost) == 0 && S_ISREG(ost.st_mode)) old = ost.st_size;
    quota_admit(g.m, 0);   /* counts the mount, if not yet */
  }
  int fd = hc_capdir_openat(g.cap, g.rel, flags | O_NONBLOCK | O_NOCTTY, 0644);
  if (fd < 0) return fail(L, fd, lua_tostring(L, 1));
  struct stat st;
  if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) { close(fd); return fail(L, -EISDIR, lua_tostring(L, 1)); }
  if (flags & O_TRUNC) quota_account(g.m, -old);
  return push_handle(L, s, fd, NULL, append, rd, wr, g.m);
}

static int fs_opendir(lua_State *L) {
  hc_session *s = session_of(L);
  gpath g;
  GUEST(1, g);
  NOT_ROOT(g, 1);
  int fd = hc_capdir_openat(g.cap, g.rel, O_RDONLY | O_DIRECTORY, 0);
  if (fd < 0) return fail(L, fd, lua_tostring(L, 1));
  DIR *d = fdopendir(fd);
  if (!d) { int e = errno; close(fd); return fail(L, -e, lua_tostring(L, 1)); }
  return push_handle(L, s, -1, d, 0, 0, 0, NULL);
}

#define HANDLE(h, idx) \
  hc_handle *h = hc_stream_find(session_of(L), L, idx); \
  if (!h) return fail(L, -EBADF, "handle")

#define IS_FILE(h) ((h)->kind == HC_STREAM_FILE)

static int fs_readdir(lua_State *L) {
  HANDLE(h, 1);
  if (h->kind != HC_STREAM_DIR) return fail(L, -ENOTDIR, "handle");
  lua_Integer limit = luaL_optinteger(L, 2, 1000);
  if (limit < 1 || limit > FS_LIST_MAX) return fail(L, -EINVAL, "limit");
  int more;
  long resume;
  int r = read_entries(L, h->dir, limit, &more, &resume);
  if (r) return fail(L, r, "readdir");
  lua_pushboolean(L, !more);
  return 2;
}

static int io_read(lua_State *L) {
  HANDLE(h, 1);
  if (h->kind == HC_STREAM_TCP || h->kind == HC_STREAM_UDP) return hc_socket_io_read(L, h);
  if (!IS_FILE(h) || !h->readable) return fail(L, -EBADF, "handle");
  lua_Integer len = luaL_optinteger(L, 2, 65536);
  lua_Integer off = lua_isnoneornil(L, 3) ? -1 : luaL_checkinteger(L, 3);
  int b64 = want_base64(L, 4);
  if (len < 0 || (off < 0 && !lua_isnoneornil(L, 3))) return fail(L, -EINVAL, "read");
  hc_tenant *t = tenant_of(L);
  if (len > t->limits.read_bytes) return hc_fail_limit(L, "size", "read longer than limits.read_bytes");
  struct stat st;
  int known = fstat(h->fd, &st) == 0;
  if (known && S_ISREG(st.st_mode)) {
    lua_Integer pos = off >= 0 ? off : (lua_Integer)lseek(h->fd, 0, SEEK_CUR);
    lua_Integer avail = (lua_Integer)st.st_size > pos ? (lua_Integer)st.st_size - pos : 0;
    if (len > avail) len = avail;
  } else if (len > 65536) {
    len = 65536;
  }
  return read_into(L, h->fd, 0, off, len, known ? &st : NULL, b64);
}

static int io_write(lua_State *L) {
  HANDLE(h, 1);
  if (h->kind == HC_STREAM_TCP || h->kind == HC_STREAM_UDP) return hc_socket_io_write(L, h);
  if (!IS_FILE(h) || !h->writable) return fail(L, -EBADF, "handle");
  size_t n;
  const char *data = luaL_checklstring(L, 2, &n);
  int has_off = !lua_isnoneornil(L, 3);
  lua_Integer off = has_off ? luaL_checkinteger(L, 3) : 0;
  if (has_off && (h->append || off < 0)) return fail(L, -EINVAL, "offset");
  int64_t old = 0;
  if (h->mount && h->mount->quota) {
    old = file_size(h->fd);
    off_t pos = lseek(h->fd, 0, SEEK_CUR);
    int64_t want = h->append ? old + (int64_t)n
                 : max64(old, (has_off ? off : (pos > 0 ? pos : 0)) + (int64_t)n);
    int q = quota_admit(h->mount, want - old);
    if (q) return fail(L, q, "write");
  }
  size_t done = 0;
  while (done < n) {
    ssize_t w = has_off ? pwrite(h->fd, data + done, n - done, (off_t)(off + (lua_Integer)done))
                        : write(h->fd, data + done, n - done);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) { if (done) break; return fail(L, -errno, "write"); }
    done += (size_t)w;
  }
  if (h->mount && h->mount->quota) quota_account(h->mount, file_size(h->fd) - old);
  lua_pushinteger(L, (lua_Integer)done);
  return 1;
}

static int io_seek(lua_State *L) {
  HANDLE(h, 1);
  if (h->dir) return fail(L, -EBADF, "handle");
  lua_Integer off = luaL_checkinteger(L, 2);
  const char *wh = luaL_checkstring(L, 3);
  int w = strcmp(wh, "set") == 0 ? SEEK_SET : strcmp(wh, "cur") == 0 ? SEEK_CUR
        : strcmp(wh, "end") == 0 ? SEEK_END : -1;
  if (w < 0) return fail(L, -EINVAL, "whence");
  off_t r = lseek(h->fd, (off_t)off, w);
  if (r < 0) return fail(L, -errno, "seek");
  lua_pushinteger(L, (lua_Integer)r);
  return 1;
}

static int io_close(lua_State *L) {
  hc_session *s = session_of(L);
  HANDLE(h, 1);
  hc_stream_close(s, h);
  lua_pushboolean(L, 1);
  return 1;
}

static int io_sync(lua_State *L) {
  HANDLE(h, 1);
  if (!IS_FILE(h)) return fail(L, -EBADF, "handle");
  if (fsync(h->fd) != 0) return fail(L, -errno, "sync");
  lua_pushboolean(L, 1);
  return 1;
}

/* }===== */

/* {===== base64 (core/base64.c) ===== */

static int b64_encode(lua_State *L) {
  size_t n;
  const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &n);
  luaL_Buffer b;
  char *o = luaL_buffinitsize(L, &b, HC_BASE64_ENCODED_LEN(n));
  luaL_pushresultsize(&b, hc_base64_encode(s, n, o));
  return 1;
}

static int b64_decode(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  luaL_Buffer b;
  unsigned char *o = (unsigned char *)luaL_buffinitsize(L, &b, n / 4 * 3 + 1);
  long k = hc_base64_decode(s, n, o);
  luaL_pushresultsize(&b, k < 0 ? 0 : (size_t)k);
  if (k >= 0) return 1;
  lua_pop(L, 1);
  lua_pushnil(L);
  lua_pushliteral(L, "data");
  lua_pushliteral(L, "data is not valid padded base64");
  lua_pushliteral(L, "params");
  return 4;
}

/* }===== */

/* utf8_whole(bytes) -> the bytes up to the last whole UTF-8 character, or nil when they are not
** UTF-8 apart from one character cut off at the end (a read that stopped inside it). */
static int utf8_whole(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  long k = hc_utf8_whole_len(s, n);
  if (k < 0) lua_pushnil(L);
  else lua_pushlstring(L, s, (size_t)k);
  return 1;
}

void hc_fsapi_open(lua_State *L) {
  static const luaL_Reg fns[] = {
    {"set_mounts", fs_set_mounts},
    {"fs_stat", fs_stat}, {"fs_read", fs_read}, {"fs_write", fs_write}, {"fs_list", fs_list},
    {"fs_mkdir", fs_mkdir}, {"fs_remove", fs_remove}, {"fs_rename", fs_rename},
    {"fs_truncate", fs_truncate}, {"fs_symlink", fs_symlink}, {"fs_readlink", fs_readlink},
    {"fs_link", fs_link}, {"fs_chmod", fs_chmod}, {"fs_utimes", fs_utimes},
    {"fs_open", fs_open}, {"fs_opendir", fs_opendir}, {"fs_readdir", fs_readdir},
    {"io_read", io_read}, {"io_write", io_write}, {"io_seek", io_seek}, {"io_close", io_close},
    {"io_sync", io_sync}, {"b64_encode", b64_encode}, {"b64_decode", b64_decode},
    {"utf8_whole", utf8_whole},
    {NULL, NULL}};
  luaL_setfuncs(L, fns, 0);
}
