/*
** Loading a pattern: the prelude, then the script, then its result copied
** into a cg_pattern, all inside one protected call on a fresh state.
*/
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "lp.h"

extern const char lp_prelude_src[];
extern const size_t lp_prelude_len;

typedef struct lp_job {
  const char *src;
  size_t len;
  const char *const *overrides;
  cg_pattern *p;
} lp_job;

/* Overrides are checked before any Lua runs: a malformed one is the
** caller's mistake, with no script line to name. */
static sieve_status check_overrides(const char *chunk, const char *const *ov, cg_err *e) {
  for (; ov && *ov; ov++) {
    const char *eq = strchr(*ov, '=');
    if (!eq || eq == *ov) {
      char text[128];
      lp_one_line(*ov, text, sizeof text);
      return cg_fail(e, SIEVE_ERR_ARG, "%s: override '%s' is not of the form name=value", chunk, text);
    }
  }
  return SIEVE_OK;
}

static void push_overrides(lua_State *L, const char *const *ov) {
  lua_newtable(L);
  for (; ov && *ov; ov++) {
    const char *eq = strchr(*ov, '=');
    lua_pushlstring(L, *ov, (size_t)(eq - *ov));
    lua_pushstring(L, eq + 1);
    lua_settable(L, -3);  /* a later override of the same name wins */
  }
}

/*
** The prelude is compiled once per process and its bytecode kept: every
** load then undumps it (about 0.5 ms) instead of parsing 30 KB of Lua
** (about 4 ms). Only sieve's own bytecode is loaded in binary mode; a
** script is always text. Where compiling fails the source is parsed.
*/
static pthread_once_t prelude_once = PTHREAD_ONCE_INIT;
static char *prelude_bc;
static size_t prelude_bc_len;

static int grow(lua_State *L, const void *p, size_t n, void *ud) {
  size_t *cap = ud;
  if (prelude_bc_len + n > *cap) {
    size_t want = 2 * *cap > prelude_bc_len + n ? 2 * *cap : prelude_bc_len + n;
    char *b = realloc(prelude_bc, want);
    if (!b) return 1;
    prelude_bc = b;
    *cap = want;
  }
  memcpy(prelude_bc + prelude_bc_len, p, n);
  prelude_bc_len += n;
  return 0;
}

static void compile_prelude(void) {
  lua_State *L = luaL_newstate();
  size_t cap = 0;
  if (!L) return;
  if (luaL_loadbufferx(L, lp_prelude_src, lp_prelude_len, "=[sieve prelude]", "t") != LUA_OK ||
      lua_dump(L, grow, &cap, 0) != 0) {
    free(prelude_bc);
    prelude_bc = NULL;
    prelude_bc_len = 0;
  }
  lua_close(L);
}

static int load_prelude(lua_State *L) {
  pthread_once(&prelude_once, compile_prelude);
  if (prelude_bc) return luaL_loadbufferx(L, prelude_bc, prelude_bc_len, "=[sieve prelude]", "b");
  return luaL_loadbufferx(L, lp_prelude_src, lp_prelude_len, "=[sieve prelude]", "t");
}

static int count_lines(const char *s, size_t n) {
  int lines = 1;
  for (size_t i = 0; i < n; i++)
    if (s[i] == '\n' && i + 1 < n && lines < 0x7fffffff) lines++;
  return lines;
}

static int l_run(lua_State *L) {
  lp_job *j = lua_touserdata(L, 1);
  lp_state *s = lp_state_of(L);
  lua_settop(L, 0);
  if (load_prelude(L) != LUA_OK) return lua_error(L);
  lp_expr_open(L);
  push_overrides(L, j->overrides);
  lua_call(L, 2, 1);
  lua_getfield(L, 1, "finish");                           /* 2: finish */
  const char *name = lua_pushfstring(L, "@%s", s->chunk); /* 3 */
  int st = luaL_loadbufferx(L, j->src, j->len, name, "t");
  if (st != LUA_OK) {
    if (st == LUA_ERRMEM && !s->mem_refused) s->raise_status = SIEVE_ERR_NOMEM;
    return lua_error(L);
  }
  lua_call(L, 0, 1);                                      /* 4: the script's result */
  lua_pushvalue(L, 2);
  lua_insert(L, 4);
  lua_pushinteger(L, s->fallback_line);
  lua_call(L, 2, 1);                                      /* 4: the spec */
  lp_fill(L, j->p);
  return 0;
}

sieve_status lp_load(const char *chunk, const char *src, size_t len,
                     const char *const *overrides, const lp_limits *lim,
                     cg_pattern **out, cg_err *e) {
  *out = NULL;
  sieve_status st = check_overrides(chunk, overrides, e);
  if (st) return st;
  cg_pattern *p = cg_pattern_new();
  if (!p) return cg_fail(e, SIEVE_ERR_NOMEM, "out of memory creating a pattern");
  lp_state *s = lp_state_open(p->g, chunk, lim, e);
  if (!s) {
    cg_pattern_free(p);
    return e ? e->status : SIEVE_ERR_NOMEM;
  }
  s->fallback_line = count_lines(src, len);
  lp_job job = {src, len, overrides, p};
  lua_pushcfunction(s->L, l_run);
  lua_pushlightuserdata(s->L, &job);
  st = lp_state_call(s, 1, 0, e);
  lp_state_close(s);
  if (!st) st = cg_pattern_finish(p, e);
  if (st) {
    cg_pattern_free(p);
    return st;
  }
  *out = p;
  return SIEVE_OK;
}

cg_pattern *lp_pattern_ir(const sieve_pattern *p) { return p ? p->p : NULL; }
