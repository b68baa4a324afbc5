/*
** Copying the normalised spec (built and checked by the prelude's
** sieve.pattern and finish) into the pattern IR. The spec has been
** validated, so a mismatch here is a bug in sieve, reported as one.
*/
#include <string.h>

#include <lauxlib.h>

#include "lp.h"

static void *need(lua_State *L, void *ptr) {
  if (!ptr) lp_raise(L, SIEVE_ERR_NOMEM, "out of memory filling the pattern IR");
  return ptr;
}

static lua_Integer get_int(lua_State *L, int t, const char *k) {
  int ok;
  lua_getfield(L, t, k);
  lua_Integer v = lua_tointegerx(L, -1, &ok);
  if (!ok) luaL_error(L, "sieve bug: spec field '%s' is not an integer", k);
  lua_pop(L, 1);
  return v;
}

static double get_num(lua_State *L, int t, const char *k) {
  int ok;
  lua_getfield(L, t, k);
  double v = lua_tonumberx(L, -1, &ok);
  if (!ok) luaL_error(L, "sieve bug: spec field '%s' is not a number", k);
  lua_pop(L, 1);
  return v;
}

static const char *get_str(lua_State *L, int t, const char *k, cg_arena *a) {
  lua_getfield(L, t, k);
  const char *v = lua_tostring(L, -1);
  if (!v) luaL_error(L, "sieve bug: spec field '%s' is not a string", k);
  char *d = need(L, cg_strdup(a, v));
  lua_pop(L, 1);
  return d;
}

/* Pushes spec field k, which must be a list; returns its length. */
static int get_list(lua_State *L, int t, const char *k) {
  if (lua_getfield(L, t, k) != LUA_TTABLE) luaL_error(L, "sieve bug: spec field '%s' is not a list", k);
  lua_Integer n = luaL_len(L, -1);
  if (n < 0 || n > CG_MAX_HEADS * 64) luaL_error(L, "sieve bug: spec list '%s' has length %d", k, (int)n);
  return (int)n;
}

static int *get_ints(lua_State *L, int t, const char *k, cg_arena *a, int *count) {
  int n = get_list(L, t, k);
  int *v = n ? need(L, cg_alloc(a, sizeof(int) * (size_t)n)) : NULL;
  for (int i = 0; i < n; i++) {
    int ok;
    lua_geti(L, -1, i + 1);
    v[i] = (int)lua_tointegerx(L, -1, &ok);
    if (!ok) luaL_error(L, "sieve bug: spec list '%s' holds a non-integer", k);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  *count = n;
  return v;
}

static void fill_params(lua_State *L, int t, cg_pattern *p) {
  int n = get_list(L, t, "params"), list = lua_gettop(L);
  p->params = n ? need(L, cg_alloc(p->arena, sizeof(cg_param) * (size_t)n)) : NULL;
  p->nparams = n;
  for (int i = 0; i < n; i++) {
    cg_param *q = &p->params[i];
    lua_geti(L, list, i + 1);
    int e = lua_gettop(L);
    q->name = get_str(L, e, "name", p->arena);
    lua_getfield(L, e, "overridden");
    q->overridden = lua_toboolean(L, -1);
    lua_getfield(L, e, "value");
    if (lua_type(L, -1) == LUA_TBOOLEAN) {
      q->kind = CG_PARAM_BOOL;
      q->num = lua_toboolean(L, -1);
    } else if (lua_type(L, -1) == LUA_TNUMBER) {
      q->kind = CG_PARAM_NUMBER;
      q->num = lua_tonumber(L, -1);
    } else {
      q->kind = CG_PARAM_STRING;
      q->str = need(L, cg_strdup(p->arena, luaL_checkstring(L, -1)));
    }
    lua_settop(L, list);
  }
  lua_pop(L, 1);
}

/* Class masks together stay within CG_MAX_MASK_NODES, shared nodes
** counted once: one descending sweep from the masks (marked in seen). */
static void check_size(lua_State *L, const cg_graph *g, cg_ref top, uint8_t *seen, int line) {
  int count = 0;
  for (cg_ref i = top; i >= 0; i--) {
    if (!seen[i]) continue;
    count++;
    const cg_node *n = cg_node_at(g, i);
    if (n->a != CG_NONE) seen[n->a] = 1;
    if (n->b != CG_NONE) seen[n->b] = 1;
    if (n->c != CG_NONE) seen[n->c] = 1;
  }
  if (count > CG_MAX_MASK_NODES)
    lp_raise_at(L, SIEVE_ERR_LIMIT, line,
                "the masks have %d distinct operations, more than the %d a kernel may compute",
                count, CG_MAX_MASK_NODES);
}

static void fill_classes(lua_State *L, int t, cg_pattern *p) {
  int n = get_list(L, t, "classes"), list = lua_gettop(L);
  int gn = cg_graph_size(p->g), line = 0;
  cg_ref top = -1;
  uint8_t *seen = lua_newuserdatauv(L, (size_t)(gn ? gn : 1), 0);  /* freed by Lua, even on error */
  memset(seen, 0, (size_t)(gn ? gn : 1));
  lua_insert(L, list);
  list++;
  p->classes = need(L, cg_alloc(p->arena, sizeof(cg_class) * (size_t)(n ? n : 1)));
  p->nclasses = n;
  for (int i = 0; i < n; i++) {
    cg_class *c = &p->classes[i];
    lua_geti(L, list, i + 1);
    int e = lua_gettop(L);
    c->name = get_str(L, e, "name", p->arena);
    lua_getfield(L, e, "mask");
    c->mask = lp_tonode(L, -1);
    if (c->mask == CG_NONE || cg_type_of(p->g, c->mask) != CG_BOOL)
      luaL_error(L, "sieve bug: class %d has no boolean mask", i);
    seen[c->mask] = 1;
    if (c->mask > top) {
      top = c->mask;
      line = lp_node_line(L, -1);
    }
    lua_getfield(L, e, "layout");
    int l = lua_gettop(L);
    int kind = get_int(L, l, "kind");
    if (kind < 0) { /* sieve.layout.auto: chosen per shape, identity until then */
      if (!p->auto_layout) {
        p->auto_layout = need(L, cg_alloc(p->arena, (size_t)n));
        memset(p->auto_layout, 0, (size_t)n);
      }
      p->auto_layout[i] = 1;
    }
    c->layout.kind = kind < 0 ? CG_LAYOUT_IDENTITY : (cg_layout_kind)kind;
    int nt;
    int *tile = get_ints(L, l, "tile", p->arena, &nt);
    if (nt != 3) luaL_error(L, "sieve bug: class %d's tile is not a triple", i);
    memcpy(c->layout.tile, tile, sizeof c->layout.tile);
    lua_settop(L, list);
  }
  check_size(L, p->g, top, seen, line);
  lua_pop(L, 2);
}

static void fill_selection(lua_State *L, int t, cg_pattern *p) {
  lua_getfield(L, t, "sel");
  int s = lua_gettop(L);
  cg_selection *q = &p->sel;
  q->kind = (cg_select_kind)get_int(L, s, "kind");
  q->recall = get_num(L, s, "recall");
  q->topk = (int)get_int(L, s, "topk");
  q->sparsity = get_num(L, s, "sparsity");
  q->samples = (int)get_int(L, s, "samples");
  q->sample_range = (int)get_int(L, s, "range");
  q->mode = (cg_profile_mode)get_int(L, s, "mode");
  q->file = get_str(L, s, "file", p->arena);
  if (!*q->file) q->file = NULL;
  q->steps = get_ints(L, s, "steps", p->arena, &q->nsteps);
  q->levels = get_ints(L, s, "levels", p->arena, &q->nlevels);
  q->tiers = get_num(L, s, "tiers");
  q->text_sink = (int)get_int(L, s, "text_sink");
  q->cache_lse = (int)get_int(L, s, "cache_lse");
  q->pmask = NULL;
  if (lua_getfield(L, s, "pmasks") == LUA_TTABLE) {
    int list = lua_gettop(L), gn = cg_graph_size(p->g), line = 0;
    if (luaL_len(L, list) != p->nclasses) luaL_error(L, "sieve bug: profiling masks do not match the classes");
    q->pmask = need(L, cg_alloc(p->arena, sizeof(cg_ref) * (size_t)p->nclasses));
    uint8_t *seen = lua_newuserdatauv(L, (size_t)(gn ? gn : 1), 0);
    memset(seen, 0, (size_t)(gn ? gn : 1));
    cg_ref top = -1;
    for (int i = 0; i < p->nclasses; i++) {
      lua_geti(L, list, i + 1);
      q->pmask[i] = lp_tonode(L, -1);
      if (q->pmask[i] == CG_NONE || cg_type_of(p->g, q->pmask[i]) != CG_BOOL)
        luaL_error(L, "sieve bug: profiling mask %d is not boolean", i);
      seen[q->pmask[i]] = 1;
      if (q->pmask[i] > top) {
        top = q->pmask[i];
        line = lp_node_line(L, -1);
      }
      lua_pop(L, 1);
    }
    check_size(L, p->g, top, seen, line);  /* the profiling kernel computes them all */
    lua_pop(L, 1);
  }
  lua_pop(L, 2);
}

void lp_fill(lua_State *L, cg_pattern *p) {
  int t = lua_gettop(L);
  p->name = get_str(L, t, "name", p->arena);
  p->source = need(L, cg_strdup(p->arena, lp_state_of(L)->chunk));
  p->block_q = (int)get_int(L, t, "block_q");
  p->block_k = (int)get_int(L, t, "block_k");
  p->frames = (int)get_int(L, t, "frames");
  p->height = (int)get_int(L, t, "height");
  p->width = (int)get_int(L, t, "width");
  p->text = (int)get_int(L, t, "text");
  p->text_after = (int)get_int(L, t, "text_after");
  fill_params(L, t, p);
  fill_classes(L, t, p);
  p->head_class = get_ints(L, t, "heads", p->arena, &p->period);
  if (p->period < 1) luaL_error(L, "sieve bug: no head classes");
  for (int i = 0; i < p->period; i++)
    if (p->head_class[i] < 0 || p->head_class[i] >= p->nclasses)
      luaL_error(L, "sieve bug: head class %d out of range", p->head_class[i]);
  fill_selection(L, t, p);
  p->dense_steps = (int)get_int(L, t, "dense_steps");
  p->dense_layers = (int)get_int(L, t, "dense_layers");
}
