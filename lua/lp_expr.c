/*
** Expression nodes in Lua: userdata holding a ref into the pattern's graph,
** with arithmetic and logic metamethods, and the constructor table the
** prelude builds the DSL from.
**
** Lua cannot turn `<`, `<=`, `==`, `and`, `or`, `not` into graph nodes
** (`<` always yields a Lua boolean, `and`/`or` short-circuit on truthiness),
** so comparisons are methods (a:lt(b)) and logic is & | ~; the order
** metamethods raise an error that says so.
*/
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "lp.h"

#define LP_NODE_MT "sieve.expr"
/* What one graph node costs, counted against the memory limit: the node,
** its hash slots, and the headroom of the doubling arrays. */
#define LP_NODE_BYTES 96

typedef struct lp_node {
  cg_ref ref;
  int line;  /* script line that made this value, 0 in the prelude */
} lp_node;

/* ==================================================================
** Values
** =================================================================== */

static void push_node(lua_State *L, cg_ref r) {
  lp_state *s = lp_state_of(L);
  if (r == CG_NONE) lp_raise(L, SIEVE_ERR_NOMEM, "out of memory building an expression");
  if (s->mem + (size_t)cg_graph_size(s->g) * LP_NODE_BYTES > s->mem_limit) {
    s->mem_hit = 1;
    lp_raise(L, SIEVE_ERR_LIMIT, "expression graph exceeds the memory limit of %zu MiB",
             s->mem_limit >> 20);
  }
  if (cg_node_at(s->g, r)->depth > CG_MAX_DEPTH)
    lp_raise(L, SIEVE_ERR_LIMIT, "expression nests deeper than %d operations (kernels could not be "
             "compiled in bounded time; combine terms as a balanced tree)", CG_MAX_DEPTH);
  /* Constants enter at most 32 bits wide and folding keeps them so: then
  ** no fold of two of them can overflow the graph's 64-bit arithmetic. */
  int64_t v;
  if (cg_is_const(s->g, r, &v) && (v < INT32_MIN || v > INT32_MAX))
    lp_raise(L, SIEVE_ERR_SCRIPT, "constant expression %lld does not fit in 32 bits", (long long)v);
  lp_node *n = lua_newuserdatauv(L, sizeof *n, 0);
  n->ref = r;
  n->line = lp_script_line(L);
  luaL_setmetatable(L, LP_NODE_MT);
}

cg_ref lp_tonode(lua_State *L, int idx) {
  lp_node *n = luaL_testudata(L, idx, LP_NODE_MT);
  return n ? n->ref : CG_NONE;
}

int lp_node_line(lua_State *L, int idx) {
  lp_node *n = luaL_testudata(L, idx, LP_NODE_MT);
  return n ? n->line : 0;
}

static const char *describe(lua_State *L, int idx) {
  lp_state *s = lp_state_of(L);
  cg_ref r = lp_tonode(L, idx);
  if (r != CG_NONE)
    return cg_type_of(s->g, r) == CG_BOOL ? "a boolean expression" : "an integer expression";
  switch (lua_type(L, idx)) {
  case LUA_TNONE: case LUA_TNIL: return "nil";
  case LUA_TBOOLEAN: return "a Lua boolean";
  case LUA_TNUMBER: return lua_isinteger(L, idx) ? "an integer" : "a number";
  case LUA_TSTRING: return "a string";
  default: return luaL_typename(L, idx);
  }
}

/*
** A Lua value as an operand: nodes as they are, numbers as integer
** constants (the IR is integer-valued; a value that is not an integer or
** does not fit 32 bits is a mistake in the script), booleans as constants.
*/
static cg_ref operand(lua_State *L, int idx, const char *op) {
  lp_state *s = lp_state_of(L);
  cg_ref r = lp_tonode(L, idx);
  if (r != CG_NONE) return r;
  switch (lua_type(L, idx)) {
  case LUA_TNUMBER: {
    lua_Integer v;
    if (lua_isinteger(L, idx)) {
      v = lua_tointeger(L, idx);
    } else {
      lua_Number d = lua_tonumber(L, idx);
      if (!(d == floor(d)) || fabs(d) > 9.2e18)
        lp_raise(L, SIEVE_ERR_SCRIPT, "%s: %.14g is not an integer (expressions are integer-valued)", op, d);
      v = (lua_Integer)d;
    }
    if (v < INT32_MIN || v > INT32_MAX)
      lp_raise(L, SIEVE_ERR_SCRIPT, "%s: constant %lld does not fit in 32 bits", op, (long long)v);
    r = cg_const(s->g, v);
    break;
  }
  case LUA_TBOOLEAN: r = cg_bool(s->g, lua_toboolean(L, idx)); break;
  default:
    lp_raise(L, SIEVE_ERR_SCRIPT, "%s: expected an expression or a number, got %s", op, describe(L, idx));
  }
  if (r == CG_NONE) lp_raise(L, SIEVE_ERR_NOMEM, "out of memory building an expression");
  return r;
}

static cg_ref typed(lua_State *L, int idx, cg_type want, const char *op) {
  lp_state *s = lp_state_of(L);
  cg_ref r = operand(L, idx, op);
  if (cg_type_of(s->g, r) == want) return r;
  if (want == CG_INT)
    lp_raise(L, SIEVE_ERR_SCRIPT,
             "%s needs integer operands, got %s (sieve.choose(c, 1, 0) turns a condition into 0/1)",
             op, describe(L, idx));
  lp_raise(L, SIEVE_ERR_SCRIPT,
           "%s needs boolean operands, got %s (compare integers first: a:eq(b), a:lt(b), ...)", op,
           describe(L, idx));
  return CG_NONE;
}

/* ==================================================================
** Operators
** =================================================================== */

typedef struct lp_binop {
  const char *name;  /* as the DSL spells it */
  cg_op op;
  cg_type in;        /* operand type, unless `same` */
  int same;          /* operands of either type, as long as both agree */
  int swap;          /* gt/ge: lt/le with operands swapped */
} lp_binop;

static const lp_binop binops[] = {
  {"add", CG_ADD, CG_INT, 0, 0}, {"sub", CG_SUB, CG_INT, 0, 0}, {"mul", CG_MUL, CG_INT, 0, 0},
  {"div", CG_DIV, CG_INT, 0, 0}, {"mod", CG_MOD, CG_INT, 0, 0}, {"min", CG_MIN, CG_INT, 0, 0},
  {"max", CG_MAX, CG_INT, 0, 0}, {"lt", CG_LT, CG_INT, 0, 0},   {"le", CG_LE, CG_INT, 0, 0},
  {"gt", CG_LT, CG_INT, 0, 1},   {"ge", CG_LE, CG_INT, 0, 1},   {"eq", CG_EQ, CG_INT, 1, 0},
  {"ne", CG_NE, CG_INT, 1, 0},   {"xor", CG_NE, CG_BOOL, 0, 0}, {NULL, CG_NOPS, CG_INT, 0, 0}};

static cg_ref binop(lua_State *L, const lp_binop *b, int ia, int ib) {
  lp_state *s = lp_state_of(L);
  cg_ref a, c;
  if (b->same) {
    a = operand(L, ia, b->name);
    c = operand(L, ib, b->name);
    if (cg_type_of(s->g, a) != cg_type_of(s->g, c))
      lp_raise(L, SIEVE_ERR_SCRIPT, "%s compares %s with %s", b->name, describe(L, ia), describe(L, ib));
  } else {
    a = typed(L, ia, b->in, b->name);
    c = typed(L, ib, b->in, b->name);
  }
  int64_t v;
  if ((b->op == CG_DIV || b->op == CG_MOD) && cg_is_const(s->g, c, &v) && v == 0)
    lp_raise(L, SIEVE_ERR_SCRIPT, "%s by zero", b->op == CG_DIV ? "division" : "modulo");
  return b->swap ? cg_bin(s->g, b->op, c, a) : cg_bin(s->g, b->op, a, c);
}

/* Binary operator or method; upvalue 1 indexes binops. */
static int l_binop(lua_State *L) {
  const lp_binop *b = &binops[lua_tointeger(L, lua_upvalueindex(1))];
  push_node(L, binop(L, b, 1, 2));
  return 1;
}

static int l_neg(lua_State *L) {
  push_node(L, cg_un(lp_state_of(L)->g, CG_NEG, typed(L, 1, CG_INT, "unary -")));
  return 1;
}

static int l_abs(lua_State *L) {
  push_node(L, cg_un(lp_state_of(L)->g, CG_ABS, typed(L, 1, CG_INT, "abs")));
  return 1;
}

static int l_not(lua_State *L) {
  push_node(L, cg_un(lp_state_of(L)->g, CG_NOT, typed(L, 1, CG_BOOL, "not (~)")));
  return 1;
}

static int l_choose(lua_State *L) {
  lp_state *s = lp_state_of(L);
  cg_ref c = typed(L, 1, CG_BOOL, "sieve.choose: condition");
  cg_ref a = operand(L, 2, "sieve.choose"), b = operand(L, 3, "sieve.choose");
  if (cg_type_of(s->g, a) != cg_type_of(s->g, b))
    lp_raise(L, SIEVE_ERR_SCRIPT, "sieve.choose: the branches differ in type (%s, %s)", describe(L, 2),
             describe(L, 3));
  push_node(L, cg_select(s->g, c, a, b));
  return 1;
}

/* ==================================================================
** Canonical and/or
** =================================================================== */

/*
** and/or chains are flattened, sorted by structural hash and deduplicated
** before they are folded, so that a | b | c, c | (b | a) and
** sieve.union(b, c, a) are one node: the IR, and the hash keyed on it,
** do not depend on the order a script happens to combine masks in.
*/
typedef struct lp_term {
  uint64_t h;
  cg_ref r;
} lp_term;

typedef struct lp_vec {
  lp_term *v;
  int n, cap, slot;  /* slot: stack index of the userdata holding v */
} lp_vec;

/* Scratch memory lives in Lua userdata, so an error raised mid-way leaks
** nothing. */
static void vec_push(lua_State *L, lp_vec *a, uint64_t h, cg_ref r) {
  if (a->n == a->cap) {
    int nc = a->cap ? a->cap * 2 : 16;
    if (nc > INT32_MAX / (int)sizeof(lp_term)) lp_raise(L, SIEVE_ERR_LIMIT, "expression too large");
    lp_term *nv = lua_newuserdatauv(L, (size_t)nc * sizeof *nv, 0);
    if (a->n) memcpy(nv, a->v, (size_t)a->n * sizeof *nv);
    lua_replace(L, a->slot);
    a->v = nv;
    a->cap = nc;
  }
  a->v[a->n].h = h;
  a->v[a->n++].r = r;
}

static int term_cmp(const void *x, const void *y) {
  const lp_term *a = x, *b = y;
  if (a->h != b->h) return a->h < b->h ? -1 : 1;
  return (a->r > b->r) - (a->r < b->r);
}

static void flatten(lua_State *L, const cg_graph *g, cg_op op, cg_ref r, lp_vec *stack, lp_vec *out) {
  stack->n = 0;
  vec_push(L, stack, 0, r);
  while (stack->n) {
    cg_ref x = stack->v[--stack->n].r;
    const cg_node *n = cg_node_at(g, x);
    if (n->op == op) {
      vec_push(L, stack, 0, n->b);
      vec_push(L, stack, 0, n->a);
    } else {
      vec_push(L, out, n->shash, x);
    }
  }
}

/* all(...) / any(...); upvalue 1 is the cg_op. Lua booleans count. */
static int l_nary(lua_State *L) {
  lp_state *s = lp_state_of(L);
  cg_op op = (cg_op)lua_tointeger(L, lua_upvalueindex(1));
  const char *name = op == CG_AND ? "and (&, sieve.all)" : "or (|, sieve.any)";
  int nargs = lua_gettop(L);
  lua_settop(L, nargs + 2);
  lp_vec stack = {.slot = nargs + 1}, terms = {.slot = nargs + 2};
  for (int i = 1; i <= nargs; i++) flatten(L, s->g, op, typed(L, i, CG_BOOL, name), &stack, &terms);
  if (terms.n) qsort(terms.v, (size_t)terms.n, sizeof *terms.v, term_cmp);  /* all() has none: v is NULL */
  cg_ref acc = cg_bool(s->g, op == CG_AND);
  for (int i = 0; i < terms.n; i++)
    if (i == 0 || terms.v[i].r != terms.v[i - 1].r) acc = cg_bin(s->g, op, acc, terms.v[i].r);
  push_node(L, acc);
  return 1;
}

/* ==================================================================
** Metamethods that refuse
** =================================================================== */

static int l_order(lua_State *L) {
  return lp_raise(L, SIEVE_ERR_SCRIPT,
                  "Lua cannot turn a comparison into a graph node: use a:lt(b) instead of a < b, "
                  "a:le(b) for a <= b, a:gt(b) for a > b, a:ge(b) for a >= b; "
                  "and `and`/`or`/`not` must be written &, |, ~");
}

static int l_eq(lua_State *L) {
  return lp_raise(L, SIEVE_ERR_SCRIPT,
                  "Lua cannot turn == into a graph node: use a:eq(b) instead of a == b and "
                  "a:ne(b) instead of a ~= b");
}

static int l_refuse(lua_State *L) {
  return lp_raise(L, SIEVE_ERR_SCRIPT, "%s is not defined on sieve expressions",
                  lua_tostring(L, lua_upvalueindex(1)));
}

static int l_index(lua_State *L) {
  lua_pushvalue(L, 2);
  if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1;
  const char *k = lua_tostring(L, 2);
  return lp_raise(L, SIEVE_ERR_SCRIPT,
                  "sieve expressions have no field '%s' (methods: eq ne lt le gt ge abs min max)",
                  k ? k : luaL_typename(L, 2));
}

static int l_tostring(lua_State *L) {
  lp_state *s = lp_state_of(L);
  cg_ref r = lp_tonode(L, 1);
  const cg_node *n = cg_node_at(s->g, r);
  const char *t = n->type == CG_BOOL ? "bool" : "int";
  if (n->op == CG_CONST)
    lua_pushfstring(L, "sieve.expr(%s %I)", t, (lua_Integer)n->imm);
  else if (n->op == CG_VAR)
    lua_pushfstring(L, "sieve.expr(%s %s)", t, cg_var_name((cg_var)n->imm));
  else
    lua_pushfstring(L, "sieve.expr(%s %s #%d)", t, cg_op_name((cg_op)n->op), (int)r);
  return 1;
}

/* ==================================================================
** Constructor table for the prelude
** =================================================================== */

static int l_var(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  for (int v = 0; v < CG_NVARS; v++) {
    if (v == CG_V_QPOS || v == CG_V_KPOS) continue;  /* layout positions are not the script's */
    if (strcmp(name, cg_var_name((cg_var)v)) == 0) {
      push_node(L, cg_var_ref(lp_state_of(L)->g, (cg_var)v));
      return 1;
    }
  }
  return luaL_error(L, "no variable '%s'", name);
}

static int l_const(lua_State *L) {
  push_node(L, operand(L, 1, "constant"));
  return 1;
}

static int l_isnode(lua_State *L) {
  lua_pushboolean(L, lp_tonode(L, 1) != CG_NONE);
  return 1;
}

/* "int", "bool", or nil for a value that is not a node. */
static int l_typeof(lua_State *L) {
  cg_ref r = lp_tonode(L, 1);
  if (r == CG_NONE) return 0;
  lua_pushstring(L, cg_type_of(lp_state_of(L)->g, r) == CG_BOOL ? "bool" : "int");
  return 1;
}

/* The script line that made a node (0 when the prelude made it). */
static int l_line(lua_State *L) {
  lp_node *n = luaL_testudata(L, 1, LP_NODE_MT);
  lua_pushinteger(L, n ? n->line : 0);
  return 1;
}

static int l_where(lua_State *L) {
  lua_pushinteger(L, lp_script_line(L));
  return 1;
}

/* raise(status, message [, line]): status is "script", "arg" or "limit". */
static int l_raise(lua_State *L) {
  static const char *const names[] = {"script", "arg", "limit", NULL};
  static const sieve_status codes[] = {SIEVE_ERR_SCRIPT, SIEVE_ERR_ARG, SIEVE_ERR_LIMIT};
  int i = luaL_checkoption(L, 1, "script", names);
  const char *msg = luaL_checkstring(L, 2);
  return lp_raise_at(L, codes[i], (int)luaL_optinteger(L, 3, 0), "%s", msg);
}

static void set_binop(lua_State *L, const char *name, const char *field) {
  for (int i = 0; binops[i].name; i++) {
    if (strcmp(binops[i].name, name) == 0) {
      lua_pushinteger(L, i);
      lua_pushcclosure(L, l_binop, 1);
      lua_setfield(L, -2, field);
      return;
    }
  }
}

static void set_nary(lua_State *L, cg_op op, const char *field) {
  lua_pushinteger(L, op);
  lua_pushcclosure(L, l_nary, 1);
  lua_setfield(L, -2, field);
}

static void set_refuse(lua_State *L, const char *event, const char *what) {
  lua_pushstring(L, what);
  lua_pushcclosure(L, l_refuse, 1);
  lua_setfield(L, -2, event);
}

static void open_metatable(lua_State *L) {
  static const char *const methods[] = {"eq", "ne", "lt", "le", "gt", "ge", "min", "max", NULL};
  luaL_newmetatable(L, LP_NODE_MT);
  static const struct { const char *event, *op; } arith[] = {
    {"__add", "add"}, {"__sub", "sub"}, {"__mul", "mul"}, {"__div", "div"},
    {"__idiv", "div"}, {"__mod", "mod"}, {"__bxor", "xor"}, {NULL, NULL}};
  for (int i = 0; arith[i].event; i++) set_binop(L, arith[i].op, arith[i].event);
  set_nary(L, CG_AND, "__band");
  set_nary(L, CG_OR, "__bor");
  lua_pushcfunction(L, l_not);
  lua_setfield(L, -2, "__bnot");
  lua_pushcfunction(L, l_neg);
  lua_setfield(L, -2, "__unm");
  lua_pushcfunction(L, l_order);
  lua_setfield(L, -2, "__lt");
  lua_pushcfunction(L, l_order);
  lua_setfield(L, -2, "__le");
  lua_pushcfunction(L, l_eq);
  lua_setfield(L, -2, "__eq");
  set_refuse(L, "__pow", "^ (power)");
  set_refuse(L, "__shl", "<< (shift)");
  set_refuse(L, "__shr", ">> (shift)");
  set_refuse(L, "__concat", ".. (use tostring(e) to print an expression)");
  set_refuse(L, "__len", "# (length)");
  set_refuse(L, "__call", "calling");
  set_refuse(L, "__newindex", "assigning a field");
  lua_pushcfunction(L, l_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushliteral(L, "sieve expression");
  lua_setfield(L, -2, "__name");
  lua_pushliteral(L, LP_NODE_MT);
  lua_setfield(L, -2, "__metatable");
  lua_createtable(L, 0, 9);
  for (int i = 0; methods[i]; i++) set_binop(L, methods[i], methods[i]);
  lua_pushcfunction(L, l_abs);
  lua_setfield(L, -2, "abs");
  lua_pushcclosure(L, l_index, 1);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}

void lp_expr_open(lua_State *L) {
  static const luaL_Reg fns[] = {
    {"var", l_var}, {"const", l_const}, {"isnode", l_isnode}, {"typeof", l_typeof},
    {"line", l_line}, {"where", l_where}, {"raise", l_raise}, {"neg", l_neg}, {"abs", l_abs}, {"not_", l_not},
    {"choose", l_choose}, {NULL, NULL}};
  open_metatable(L);
  luaL_newlib(L, fns);
  static const char *const named[] = {"add", "sub", "mul", "div", "mod", "min", "max", "lt",
                                      "le",  "gt",  "ge",  "eq",  "ne",  "xor", NULL};
  for (int i = 0; named[i]; i++) set_binop(L, named[i], named[i]);
  set_nary(L, CG_AND, "all");
  set_nary(L, CG_OR, "any");
  lua_pushinteger(L, CG_MAX_HEADS);
  lua_setfield(L, -2, "MAX_HEADS");
  static const struct { const char *name; int v; } k[] = {
    {"LAYOUT_IDENTITY", CG_LAYOUT_IDENTITY}, {"LAYOUT_TRANSPOSE", CG_LAYOUT_TRANSPOSE},
    {"LAYOUT_TILE", CG_LAYOUT_TILE},         {"SELECT_STATIC", CG_SELECT_STATIC},
    {"SELECT_SEARCH", CG_SELECT_LSE_SEARCH}, {"SELECT_PROFILE", CG_SELECT_PROFILE},
    {NULL, 0}};
  for (int i = 0; k[i].name; i++) {
    lua_pushinteger(L, k[i].v);
    lua_setfield(L, -2, k[i].name);
  }
}
