/*
** The Lua pattern layer (lp_): a sandboxed Lua 5.4 state per load, the DSL
** that traces scripts into the expression IR, and the loader that turns the
** script's `sieve.pattern{...}` into a cg_pattern.
**
** Error discipline: every call into Lua goes through lua_pcall (here:
** lp_state_call); no Lua error unwinds into a caller outside lua/. A failure
** becomes a sieve_status plus a message that starts "file:line: ".
*/
#ifndef LP_H
#define LP_H

#include <stddef.h>
#include <stdint.h>

#include <lua.h>

#include "cg_pattern.h"

/* The public handle: a pattern IR and nothing else (no Lua state survives a
** load). Other modules reach the IR through lp_pattern_ir(). */
struct sieve_pattern {
  cg_pattern *p;
};

cg_pattern *lp_pattern_ir(const sieve_pattern *p);

/* ------------------------------------------------------------------ limits */

#define LP_DEFAULT_INSTRUCTIONS ((int64_t)50 * 1000 * 1000)
#define LP_DEFAULT_MEMORY ((size_t)256 << 20)

typedef struct lp_limits {
  int64_t instructions;  /* Lua VM instructions; <= 0: the default */
  size_t memory;         /* Lua heap plus the expression graph; 0: the default */
} lp_limits;

/* ------------------------------------------------------------------- state */

typedef struct lp_state {
  lua_State *L;
  cg_graph *g;              /* expression nodes go here (the pattern's graph) */
  char *chunk;              /* script name as messages show it (a file path) */
  char short_src[LUA_IDSIZE];  /* the same, as Lua abbreviates it */
  size_t mem, mem_limit;
  int64_t insns, insn_limit;
  int mem_refused;          /* a request was refused at the limit (sticky) */
  int retry_pending;        /* the next growth request may be Lua's retry of it */
  void *refused_ptr;        /* the refused request */
  size_t refused_size;
  int mem_hit, insn_hit;    /* a limit stopped the script */
  sieve_status raise_status;  /* status of the error in flight (lp_raise) */
  int last_line;            /* last script line the hook saw */
  int fallback_line;        /* for errors raised with no script frame */
} lp_state;

/* Opens a sandboxed state building into g. NULL on failure (e filled). */
lp_state *lp_state_open(cg_graph *g, const char *chunk, const lp_limits *lim, cg_err *e);
void lp_state_close(lp_state *s);
lp_state *lp_state_of(lua_State *L);

/* lua_pcall of the function below the nargs arguments on top of the stack,
** with sieve's message handler; a failure is classified into e (and its
** message popped). */
sieve_status lp_state_call(lp_state *s, int nargs, int nresults, cg_err *e);

/* in as one line of text: newlines, tabs and other control characters
** become \n, \t or \xHH (out holds n bytes; in and out may not overlap). */
void lp_one_line(const char *in, char *out, size_t n);

/* The innermost line of the script on the Lua stack, 0 when none. */
int lp_script_line(lua_State *L);
/* Raises a Lua error "chunk:line: message" carrying status st; line is the
** script's innermost line, else `line` when > 0, else the fallback. */
int lp_raise_at(lua_State *L, sieve_status st, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#define lp_raise(L, st, ...) lp_raise_at((L), (st), 0, __VA_ARGS__)

/* -------------------------------------------------------- expression nodes */

/* Pushes the table of node constructors the prelude builds the DSL from. */
void lp_expr_open(lua_State *L);
/* The ref of a node at idx, or CG_NONE when idx is not a node. */
cg_ref lp_tonode(lua_State *L, int idx);
/* The script line that made the node at idx, 0 when unknown. */
int lp_node_line(lua_State *L, int idx);

/* ------------------------------------------------------------------ loader */

/* Runs `src` as script `chunk` with "name=value" overrides (NULL-terminated,
** may be NULL) under lim (NULL: defaults) and returns the finished IR. */
sieve_status lp_load(const char *chunk, const char *src, size_t len,
                     const char *const *overrides, const lp_limits *lim,
                     cg_pattern **out, cg_err *e);

/* Copies the normalised pattern spec on top of the stack into p; runs inside
** lua_pcall (raises on malformed specs). Defined in lp_fill.c. */
void lp_fill(lua_State *L, cg_pattern *p);

#endif
