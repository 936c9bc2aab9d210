/*
** pattern.c: Lua 5.4's pattern matching (string.find, match, gmatch, gsub) with a budget.
**
** The stock matcher runs in C, where no hook fires: `("a"):rep(40000):find(".-.-.-b")` takes
** seconds that no instruction or time limit could see. This matcher implements the same pattern
** language but counts its steps and, every PM_CHECK_STEPS, charges them to the running call's
** instruction budget and checks its deadline and time slice; a call over budget is tripped like
** any other (core/sandbox.c), so a pathological pattern ends with -32002 instead of holding the loop.
*/
#include "internal.h"
#include "sandbox.h"

#include <ctype.h>
#include <lauxlib.h>
#include <string.h>

#define PM_MAXCAPTURES 32
#define PM_MAXDEPTH 200            /* recursion of the matcher, as in the stock one */
#define PM_CHECK_STEPS 4096
#define PM_LOAD_STEPS 50000000     /* outside a call (loading a file): a plain step cap */
#define PM_ESC '%'
#define CAP_OPEN (-1)
#define CAP_POSITION (-2)

typedef struct pm {
  const char *src, *src_end, *pat_end;
  lua_State *L;
  int ncap, depth;
  struct { const char *at; ptrdiff_t len; } cap[PM_MAXCAPTURES];
  unsigned steps;
  hc_tenant *t;
  uint64_t load_steps;
} pm;

static hc_tenant *tenant_of(lua_State *L) {
  void *ud;
  lua_getallocf(L, &ud);
  return ud;
}

/* {===== the budget ===== */

static void pm_charge(pm *m) {
  hc_tenant *t = m->t;
  hc_task *k = t->current;
  if (!k) {
    m->load_steps += PM_CHECK_STEPS;
    if (m->load_steps > PM_LOAD_STEPS) luaL_error(m->L, "pattern matching took too many steps");
    return;
  }
  k->instructions += PM_CHECK_STEPS;
  uint64_t now = hc_now_us();
  if (!k->tripped && k->instructions > t->limits.instructions) k->tripped = HC_TRIP_INSTRUCTIONS;
  if (!k->tripped && now >= k->deadline_us) k->tripped = HC_TRIP_TIME;
  /* The matcher cannot yield: past the hard slice it has held the loop too long. */
  if (!k->tripped && now - atomic_load(&t->resume_start_us) >= HC_HARD_SLICE_US)
    k->tripped = HC_TRIP_TIME;
  if (k->tripped) luaL_error(m->L, "%s limit reached (in pattern matching)", hc_trip_limit(k->tripped));
}

static inline void pm_step(pm *m) {
  if (++m->steps % PM_CHECK_STEPS == 0) pm_charge(m);
}

/* }===== */

/* {===== single characters and classes ===== */

static int class_matches(int c, int cl) {
  int r;
  switch (tolower(cl)) {
    case 'a': r = isalpha(c); break;
    case 'c': r = iscntrl(c); break;
    case 'd': r = isdigit(c); break;
    case 'g': r = isgraph(c); break;
    case 'l': r = islower(c); break;
    case 'p': r = ispunct(c); break;
    case 's': r = isspace(c); break;
    case 'u': r = isupper(c); break;
    case 'w': r = isalnum(c); break;
    case 'x': r = isxdigit(c); break;
    default: return cl == c;   /* an escaped literal, e.g. %. */
  }
  r = r != 0;
  return isupper(cl) ? !r : r;
}

/* The end of the single-character class starting at p. */
static const char *class_end(pm *m, const char *p) {
  char c = *p++;
  if (c == PM_ESC) {
    if (p == m->pat_end) luaL_error(m->L, "malformed pattern (ends with '%%')");
    return p + 1;
  }
  if (c == '[') {
    if (p < m->pat_end && *p == '^') p++;
    do {   /* the first ']' right after '[' or '[^' is a literal */
      if (p == m->pat_end) luaL_error(m->L, "malformed pattern (missing ']')");
      c = *p++;
      if (c == PM_ESC && p < m->pat_end) p++;
    } while (*p != ']');
    return p + 1;
  }
  return p;
}

/* p points at '[', ec at its closing ']'. */
static int set_matches(int c, const char *p, const char *ec) {
  int want = 1;
  if (*(p + 1) == '^') { want = 0; p++; }
  while (++p < ec) {
    if (*p == PM_ESC) {
      p++;
      if (class_matches(c, (unsigned char)*p)) return want;
    } else if (*(p + 1) == '-' && p + 2 < ec) {
      if ((unsigned char)*p <= c && c <= (unsigned char)*(p + 2)) return want;
      p += 2;
    } else if ((unsigned char)*p == c) {
      return want;
    }
  }
  return !want;
}

static int single_matches(pm *m, const char *s, const char *p, const char *ep) {
  if (s >= m->src_end) return 0;
  int c = (unsigned char)*s;
  switch (*p) {
    case '.': return 1;
    case PM_ESC: return class_matches(c, (unsigned char)*(p + 1));
    case '[': return set_matches(c, p, ep - 1);
    default: return (unsigned char)*p == c;
  }
}

/* }===== */

static const char *do_match(pm *m, const char *s, const char *p);

static const char *match_balance(pm *m, const char *s, const char *p) {
  if (p + 1 >= m->pat_end) luaL_error(m->L, "malformed pattern (missing arguments to '%%b')");
  if (s >= m->src_end || *s != *p) return NULL;
  int open = *p, close = *(p + 1), level = 1;
  while (++s < m->src_end) {
    pm_step(m);
    if (*s == close) {
      if (--level == 0) return s + 1;
    } else if (*s == open) {
      level++;
    }
  }
  return NULL;
}

static const char *expand_max(pm *m, const char *s, const char *p, const char *ep) {
  ptrdiff_t i = 0;
  while (single_matches(m, s + i, p, ep)) { i++; pm_step(m); }
  for (; i >= 0; i--) {   /* try the longest first, backing off one at a time */
    pm_step(m);
    const char *r = do_match(m, s + i, ep + 1);
    if (r) return r;
  }
  return NULL;
}

static const char *expand_min(pm *m, const char *s, const char *p, const char *ep) {
  for (;;) {
    pm_step(m);
    const char *r = do_match(m, s, ep + 1);
    if (r) return r;
    if (!single_matches(m, s, p, ep)) return NULL;
    s++;
  }
}

static const char *open_capture(pm *m, const char *s, const char *p, ptrdiff_t what) {
  if (m->ncap >= PM_MAXCAPTURES) luaL_error(m->L, "too many captures");
  m->cap[m->ncap].at = s;
  m->cap[m->ncap].len = what;
  m->ncap++;
  const char *r = do_match(m, s, p);
  if (!r) m->ncap--;
  return r;
}

static int last_open(pm *m) {
  for (int i = m->ncap - 1; i >= 0; i--)
    if (m->cap[i].len == CAP_OPEN) return i;
  return luaL_error(m->L, "invalid pattern capture");
}

static const char *close_capture(pm *m, const char *s, const char *p) {
  int i = last_open(m);
  m->cap[i].len = s - m->cap[i].at;
  const char *r = do_match(m, s, p);
  if (!r) m->cap[i].len = CAP_OPEN;
  return r;
}

static int capture_index(pm *m, int digit) {
  int i = digit - '1';
  if (i < 0 || i >= m->ncap || m->cap[i].len == CAP_OPEN)
    return luaL_error(m->L, "invalid capture index %%%d", i + 1);
  return i;
}

static const char *match_backref(pm *m, const char *s, int digit) {
  int i = capture_index(m, digit);
  size_t len = (size_t)m->cap[i].len;
  if ((size_t)(m->src_end - s) >= len && memcmp(m->cap[i].at, s, len) == 0) return s + len;
  return NULL;
}

static const char *do_match(pm *m, const char *s, const char *p) {
  if (++m->depth > PM_MAXDEPTH) luaL_error(m->L, "pattern too complex");
  const char *r = NULL;
  for (;;) {
    pm_step(m);
    if (p == m->pat_end) { r = s; break; }
    if (*p == '(') {
      r = (p + 1 < m->pat_end && *(p + 1) == ')') ? open_capture(m, s, p + 2, CAP_POSITION)
                                                  : open_capture(m, s, p + 1, CAP_OPEN);
      break;
    }
    if (*p == ')') { r = close_capture(m, s, p + 1); break; }
    if (*p == '$' && p + 1 == m->pat_end) { r = s == m->src_end ? s : NULL; break; }
    if (*p == PM_ESC && p + 1 < m->pat_end) {
      char k = *(p + 1);
      if (k == 'b') {
        s = match_balance(m, s, p + 2);
        if (!s) break;
        p += 4;
        continue;
      }
      if (k == 'f') {
        p += 2;
        if (p >= m->pat_end || *p != '[') luaL_error(m->L, "missing '[' after '%%f' in pattern");
        const char *ep = class_end(m, p);
        int prev = s == m->src ? '\0' : (unsigned char)*(s - 1);
        int cur = s < m->src_end ? (unsigned char)*s : '\0';
        if (!set_matches(prev, p, ep - 1) && set_matches(cur, p, ep - 1)) { p = ep; continue; }
        break;
      }
      if (isdigit((unsigned char)k)) {
        s = match_backref(m, s, (unsigned char)k);
        if (!s) break;
        p += 2;
        continue;
      }
    }
    const char *ep = class_end(m, p);
    char q = ep < m->pat_end ? *ep : '\0';
    if (!single_matches(m, s, p, ep)) {
      if (q == '*' || q == '?' || q == '-') { p = ep + 1; continue; }   /* zero matches */
      break;
    }
    if (q == '?') {
      r = do_match(m, s + 1, ep + 1);
      if (r) break;
      p = ep + 1;
      continue;
    }
    if (q == '+') { r = expand_max(m, s + 1, p, ep); break; }
    if (q == '*') { r = expand_max(m, s, p, ep); break; }
    if (q == '-') { r = expand_min(m, s, p, ep); break; }
    s++;
    p = ep;
  }
  m->depth--;
  return r;
}

/* {===== the library functions ===== */

static void push_capture(pm *m, int i, const char *s, const char *e) {
  if (i >= m->ncap) {
    if (i != 0) luaL_error(m->L, "invalid capture index %%%d", i + 1);
    lua_pushlstring(m->L, s, (size_t)(e - s));   /* no captures: the whole match */
    return;
  }
  ptrdiff_t len = m->cap[i].len;
  if (len == CAP_OPEN) luaL_error(m->L, "unfinished capture");
  if (len == CAP_POSITION) lua_pushinteger(m->L, (m->cap[i].at - m->src) + 1);
  else lua_pushlstring(m->L, m->cap[i].at, (size_t)len);
}

static int push_captures(pm *m, const char *s, const char *e, int whole_if_none) {
  int n = (m->ncap == 0 && whole_if_none) ? 1 : m->ncap;
  luaL_checkstack(m->L, n, "too many captures");
  for (int i = 0; i < n; i++) push_capture(m, i, s, e);
  return n;
}

static void pm_init(pm *m, lua_State *L, const char *s, size_t ls, const char *p, size_t lp) {
  m->L = L;
  m->src = s;
  m->src_end = s + ls;
  m->pat_end = p + lp;
  m->ncap = 0;
  m->depth = 0;
  m->steps = 0;
  m->t = tenant_of(L);
  m->load_steps = 0;
}

static size_t start_index(lua_Integer init, size_t len) {
  if (init > 0) return (size_t)init;
  if (init == 0) return 1;
  if (init < -(lua_Integer)len) return 1;
  return len + (size_t)init + 1;
}

static int has_specials(const char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (strchr("^$*+?.([%-", p[i])) return 1;
  return 0;
}

static int find_aux(lua_State *L, int find) {
  size_t ls, lp;
  const char *s = luaL_checklstring(L, 1, &ls);
  const char *p = luaL_checklstring(L, 2, &lp);
  size_t init = start_index(luaL_optinteger(L, 3, 1), ls);
  if (init > ls + 1) { luaL_pushfail(L); return 1; }
  pm m;
  pm_init(&m, L, s, ls, p, lp);
  if (find && (lua_toboolean(L, 4) || !has_specials(p, lp))) {
    /* plain search: memmem is linear, but charge it like matching for very long subjects */
    const char *r = lp == 0 ? s + init - 1 : memmem(s + init - 1, ls - init + 1, p, lp);
    for (size_t k = 0; k < ls / PM_CHECK_STEPS; k++) pm_charge(&m);
    if (!r) { luaL_pushfail(L); return 1; }
    lua_pushinteger(L, (r - s) + 1);
    lua_pushinteger(L, (r - s) + (lua_Integer)lp);
    return 2;
  }
  const char *sp = s + init - 1;
  int anchor = lp > 0 && *p == '^';
  if (anchor) { p++; lp--; m.pat_end = p + lp; }
  do {
    m.ncap = 0;
    m.depth = 0;
    const char *e = do_match(&m, sp, p);
    if (e) {
      if (find) {
        lua_pushinteger(L, (sp - s) + 1);
        lua_pushinteger(L, e - s);
        return push_captures(&m, NULL, NULL, 0) + 2;
      }
      return push_captures(&m, sp, e, 1);
    }
    pm_step(&m);
  } while (sp++ < m.src_end && !anchor);
  luaL_pushfail(L);
  return 1;
}

static int pm_find(lua_State *L) { return find_aux(L, 1); }
static int pm_match(lua_State *L) { return find_aux(L, 0); }

/* gmatch state lives in a userdata upvalue: subject and pattern are upvalues 1 and 2 */
typedef struct gm_state { size_t pos; ptrdiff_t last; } gm_state;

static int gmatch_next(lua_State *L) {
  size_t ls, lp;
  const char *s = lua_tolstring(L, lua_upvalueindex(1), &ls);
  const char *p = lua_tolstring(L, lua_upvalueindex(2), &lp);
  gm_state *g = lua_touserdata(L, lua_upvalueindex(3));
  pm m;
  pm_init(&m, L, s, ls, p, lp);
  for (const char *src = s + g->pos; src <= m.src_end; src++) {
    m.ncap = 0;
    m.depth = 0;
    const char *e = do_match(&m, src, p);
    if (e && (g->last < 0 || e != s + g->last)) {
      g->pos = (size_t)(e - s);
      g->last = e - s;
      return push_captures(&m, src, e, 1);
    }
    pm_step(&m);
  }
  return 0;
}

static int pm_gmatch(lua_State *L) {
  size_t ls;
  luaL_checklstring(L, 1, &ls);
  luaL_checkstring(L, 2);
  size_t init = start_index(luaL_optinteger(L, 3, 1), ls);
  lua_settop(L, 2);
  gm_state *g = lua_newuserdatauv(L, sizeof *g, 0);
  g->pos = init > ls + 1 ? ls + 1 : init - 1;
  g->last = -1;
  lua_pushcclosure(L, gmatch_next, 3);
  return 1;
}

static void add_repl_string(pm *m, luaL_Buffer *b, const char *s, const char *e) {
  size_t l;
  const char *r = lua_tolstring(m->L, 3, &l);
  for (size_t i = 0; i < l; i++) {
    if (r[i] != PM_ESC) { luaL_addchar(b, r[i]); continue; }
    i++;
    if (i == l) luaL_error(m->L, "invalid use of '%%' in replacement string");
    if (r[i] == PM_ESC) { luaL_addchar(b, PM_ESC); continue; }
    if (!isdigit((unsigned char)r[i])) luaL_error(m->L, "invalid use of '%%' in replacement string");
    if (r[i] == '0') luaL_addlstring(b, s, (size_t)(e - s));
    else {
      push_capture(m, r[i] - '1', s, e);
      luaL_tolstring(m->L, -1, NULL);   /* position captures are integers */
      lua_remove(m->L, -2);
      luaL_addvalue(b);
    }
    pm_step(m);
  }
}

static void add_value(pm *m, luaL_Buffer *b, const char *s, const char *e, int tr) {
  lua_State *L = m->L;
  if (tr == LUA_TSTRING || tr == LUA_TNUMBER) { add_repl_string(m, b, s, e); return; }
  if (tr == LUA_TFUNCTION) {
    lua_pushvalue(L, 3);
    int n = push_captures(m, s, e, 1);
    lua_call(L, n, 1);
  } else {
    push_capture(m, 0, s, e);
    lua_gettable(L, 3);
  }
  if (!lua_toboolean(L, -1)) {   /* nil or false: keep the original text */
    lua_pop(L, 1);
    luaL_addlstring(b, s, (size_t)(e - s));
  } else if (!lua_isstring(L, -1)) {
    luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
  } else {
    luaL_addvalue(b);
  }
}

static int pm_gsub(lua_State *L) {
  size_t ls, lp;
  const char *s = luaL_checklstring(L, 1, &ls);
  const char *p = luaL_checklstring(L, 2, &lp);
  int tr = lua_type(L, 3);
  lua_Integer max_n = luaL_optinteger(L, 4, (lua_Integer)ls + 1);
  luaL_argexpected(L, tr == LUA_TNUMBER || tr == LUA_TSTRING || tr == LUA_TFUNCTION ||
                   tr == LUA_TTABLE, 3, "string/function/table");
  int anchor = lp > 0 && *p == '^';
  if (anchor) { p++; lp--; }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  pm m;
  pm_init(&m, L, s, ls, p, lp);
  const char *src = s, *last = NULL;
  lua_Integer n = 0;
  while (n < max_n) {
    m.ncap = 0;
    m.depth = 0;
    const char *e = do_match(&m, src, p);
    if (e && e != last) {
      n++;
      add_value(&m, &b, src, e, tr);
      src = last = e;
    } else if (src < m.src_end) {
      luaL_addchar(&b, *src++);
    } else {
      break;
    }
    pm_step(&m);
    if (anchor) break;
  }
  luaL_addlstring(&b, src, (size_t)(m.src_end - src));
  luaL_pushresult(&b);
  lua_pushinteger(L, n);
  return 2;
}

/* }===== */

/* Replace find, match, gmatch and gsub in the string table on top of the stack. */
void hc_pattern_open(lua_State *L) {
  static const luaL_Reg fns[] = {
    {"find", pm_find}, {"match", pm_match}, {"gmatch", pm_gmatch}, {"gsub", pm_gsub},
    {NULL, NULL}};
  luaL_setfuncs(L, fns, 0);
}
