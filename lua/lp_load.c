/*
** Loading a pattern: the prelude, then the script, then its result copied
** into a cg_pattern, all inside one protected call on a fresh state.
*/
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
  if (luaL_loadbufferx(L, lp_prelude_src, lp_prelude_len, "=[sieve prelude]", "t") != LUA_OK)
    return lua_error(L);
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
