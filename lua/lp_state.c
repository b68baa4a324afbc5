/*
** The sandboxed Lua state: what a script may reach, the instruction and
** memory limits, and how errors leave Lua with the script's file:line.
*/
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "lp.h"

/* The count hook runs this often; it is also how coarse the instruction
** limit and the "last line seen" for memory errors are. */
#define LP_HOOK_EVERY 1000

lp_state *lp_state_of(lua_State *L) {
  void *ud;
  lua_getallocf(L, &ud);
  return ud;
}

/* ==================================================================
** Limits
** =================================================================== */

/*
** A refusal at the limit is sticky: once the script has run into the limit,
** whatever error follows (ERRMEM, or lauxlib's "not enough memory" raised
** as an ordinary error) is reported as the limit. The one exception is
** Lua's retry of the refused request after an emergency collection (the
** next growth request, with the same arguments): when that succeeds, the
** refusal is forgotten.
*/
static void *lp_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  lp_state *s = ud;
  size_t old = ptr ? osize : 0;
  if (nsize == 0) {
    free(ptr);
    s->mem -= old;
    return NULL;
  }
  int retry = 0;
  if (nsize > old) {
    retry = s->retry_pending && ptr == s->refused_ptr && nsize == s->refused_size;
    s->retry_pending = 0;
    if (s->mem + (nsize - old) > s->mem_limit || s->mem + (nsize - old) < s->mem) {
      s->mem_refused = s->retry_pending = 1;
      s->refused_ptr = ptr;
      s->refused_size = nsize;
      return NULL;
    }
  }
  void *np = realloc(ptr, nsize);
  if (!np) return NULL;
  s->mem = s->mem - old + nsize;
  if (retry) s->mem_refused = 0;
  return np;
}

static int is_script(const lp_state *s, const lua_Debug *ar) {
  return ar->source && ar->source[0] == '@' && strcmp(ar->source + 1, s->chunk) == 0;
}

/*
** Once over the limit the hook fires on every instruction, so a script that
** catches the error with pcall is stopped again at its next instruction.
*/
static void lp_hook(lua_State *L, lua_Debug *ar) {
  lp_state *s = lp_state_of(L);
  s->insns += LP_HOOK_EVERY;
  if (lua_getinfo(L, "Sl", ar) && is_script(s, ar) && ar->currentline > 0)
    s->last_line = ar->currentline;
  if (s->insns > s->insn_limit || s->insn_hit) {
    s->insn_hit = 1;
    lua_sethook(L, lp_hook, LUA_MASKCOUNT, 1);
    lp_raise(L, SIEVE_ERR_LIMIT, "instruction limit of %lld exceeded (does the script loop forever?)",
             (long long)s->insn_limit);
  }
}

/* ==================================================================
** Positions
** =================================================================== */

int lp_script_line(lua_State *L) {
  lp_state *s = lp_state_of(L);
  lua_Debug ar;
  for (int level = 0; lua_getstack(L, level, &ar); level++) {
    if (lua_getinfo(L, "Sl", &ar) && is_script(s, &ar) && ar.currentline > 0) {
      s->last_line = ar.currentline;
      return ar.currentline;
    }
  }
  return 0;
}

int lp_raise_at(lua_State *L, sieve_status st, int line, const char *fmt, ...) {
  lp_state *s = lp_state_of(L);
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  int here = lp_script_line(L);
  if (here > 0) line = here;
  if (line <= 0) line = s->fallback_line;
  s->raise_status = st;
  lua_pushfstring(L, "%s:%d: %s", s->chunk, line, msg);
  return lua_error(L);
}

static int has_prefix(const char *m, const char *p) {
  size_t n = strlen(p);
  return n && strncmp(m, p, n) == 0 && m[n] == ':';
}

/* Skips "name:digits: " when m starts with it. */
static const char *skip_position(const char *m, const char *name) {
  if (!has_prefix(m, name)) return m;
  const char *p = m + strlen(name) + 1;
  if (*p < '0' || *p > '9') return m;
  while (*p >= '0' && *p <= '9') p++;
  if (p[0] != ':') return m;
  return p[1] == ' ' ? p + 2 : p + 1;
}

/*
** A message is one line of text: control characters a script put in it
** (error("\nx"), a name with a newline, terminal escape sequences) become
** \n, \r, \t or \xHH. Applying it twice changes nothing more.
*/
void lp_one_line(const char *in, char *out, size_t n) {
  size_t k = 0;
  for (const unsigned char *c = (const unsigned char *)in; *c && k + 5 < n; c++) {
    if (*c == '\n' || *c == '\r' || *c == '\t') {
      out[k++] = '\\';
      out[k++] = *c == '\n' ? 'n' : *c == '\r' ? 'r' : 't';
    } else if (*c < 0x20 || *c == 0x7f) {
      k += (size_t)snprintf(out + k, n - k, "\\x%02x", *c);
    } else {
      out[k++] = (char)*c;
    }
  }
  out[k] = 0;
}

/*
** Gives message m the script's position. A message Lua already positioned
** in the script keeps its line (the abbreviated name Lua uses is replaced by
** the full one); one from the prelude or from C gets `line`.
*/
static void locate(const lp_state *s, const char *m, int line, char *out, size_t n) {
  char raw[sizeof ((cg_err *)0)->msg];
  if (has_prefix(m, s->chunk))
    snprintf(raw, sizeof raw, "%s", m);
  else if (has_prefix(m, s->short_src))
    snprintf(raw, sizeof raw, "%s%s", s->chunk, m + strlen(s->short_src));
  else
    snprintf(raw, sizeof raw, "%s:%d: %s", s->chunk, line > 0 ? line : s->fallback_line,
             skip_position(m, "[sieve prelude]"));
  lp_one_line(raw, out, n);
}

static int lp_msgh(lua_State *L) {
  lp_state *s = lp_state_of(L);
  char out[sizeof ((cg_err *)0)->msg];
  const char *m = lua_tostring(L, 1);
  if (!m) m = lua_pushfstring(L, "error object is a %s value", luaL_typename(L, 1));
  locate(s, m, lp_script_line(L), out, sizeof out);
  lua_pushstring(L, out);
  return 1;
}

/*
** Limit errors get their words here rather than from the message in
** flight: a script's pcall may have replaced it, and a memory error carries
** none. Their line is the last one the hook or a DSL call saw.
*/
static sieve_status lp_state_fail(lp_state *s, int st, cg_err *e) {
  lua_State *L = s->L;
  int line = s->last_line ? s->last_line : s->fallback_line;
  if (s->mem_refused) s->mem_hit = 1;
  const char *m = lua_tostring(L, -1);
  sieve_status code;
  if (s->insn_hit)
    code = cg_fail(e, SIEVE_ERR_LIMIT, "%s:%d: instruction limit of %lld exceeded (does the script loop forever?)",
                   s->chunk, line, (long long)s->insn_limit);
  else if (s->mem_hit)
    code = cg_fail(e, SIEVE_ERR_LIMIT, "%s:%d: memory limit of %zu MiB exceeded (near this line)",
                   s->chunk, line, s->mem_limit >> 20);
  else if (st == LUA_ERRMEM)
    code = cg_fail(e, SIEVE_ERR_NOMEM, "%s:%d: out of memory", s->chunk, line);
  else {
    code = s->raise_status ? s->raise_status : SIEVE_ERR_SCRIPT;
    if (e) {
      locate(s, m ? m : "error object is not a string", s->fallback_line, e->msg, sizeof e->msg);
      e->status = code;
    }
  }
  lua_pop(L, 1);
  return code;
}

sieve_status lp_state_call(lp_state *s, int nargs, int nresults, cg_err *e) {
  lua_State *L = s->L;
  int base = lua_gettop(L) - nargs;
  lua_pushcfunction(L, lp_msgh);
  lua_insert(L, base);
  s->raise_status = SIEVE_OK;
  int st = lua_pcall(L, nargs, nresults, base);
  lua_remove(L, base);
  if (st == LUA_OK) return SIEVE_OK;
  return lp_state_fail(s, st, e);
}

/* ==================================================================
** Sandbox
** =================================================================== */

/*
** pcall for scripts: a limit error is not the script's to catch, so it is
** raised again; any other error is caught as usual.
*/
static int lp_pcall(lua_State *L) {
  lp_state *s = lp_state_of(L);
  luaL_checkany(L, 1);
  int st = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
  if (st != LUA_OK && s->mem_refused) s->mem_hit = 1;
  if (st != LUA_OK) {
    if (s->insn_hit || s->mem_hit) return lua_error(L);
    s->raise_status = SIEVE_OK;
    lua_pushboolean(L, 0);
    lua_insert(L, -2);
    return 2;
  }
  lua_pushboolean(L, 1);
  lua_insert(L, 1);
  return lua_gettop(L);
}

/* string.rep with an empty piece loops n times doing nothing, out of reach
** of the instruction limit; answer it without the loop. */
static int lp_rep(lua_State *L) {
  size_t l, lsep;
  luaL_checklstring(L, 1, &l);
  lua_Integer n = luaL_checkinteger(L, 2);
  luaL_optlstring(L, 3, "", &lsep);
  if (n <= 0 || l + lsep == 0) {
    lua_pushliteral(L, "");
    return 1;
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

/* table.insert/remove shift up to #t elements in C; a __len that lies would
** make that loop endless, so they take plain tables only. */
static int lp_plain_table(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  if (lua_getmetatable(L, 1)) return luaL_error(L, "table.insert/remove take tables without metatables");
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

/* Finalizers run with hooks off (lgc.c's GCTM), where the instruction
** limit cannot reach them; scripts get setmetatable without __gc. */
static int lp_setmetatable(lua_State *L) {
  lua_settop(L, 2);
  if (lua_type(L, 2) == LUA_TTABLE) {
    lua_pushliteral(L, "__gc");
    if (lua_rawget(L, 2) != LUA_TNIL)
      return luaL_error(L, "setmetatable: __gc metamethods are not available to patterns");
    lua_pop(L, 1);
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, 2, 1);
  return 1;
}

static void drop(lua_State *L, const char *lib, const char *const *names) {
  if (lib) lua_getglobal(L, lib);
  else lua_pushglobaltable(L);
  for (; *names; names++) {
    lua_pushnil(L);
    lua_setfield(L, -2, *names);
  }
  lua_pop(L, 1);
}

static void wrap(lua_State *L, const char *lib, const char *name, lua_CFunction f) {
  lua_getglobal(L, lib);
  lua_getfield(L, -1, name);
  lua_pushcclosure(L, f, 1);
  lua_setfield(L, -2, name);
  lua_pop(L, 1);
}

/*
** What is left out, and why: files, processes, the environment, dynamic
** code (load, require) and the debugger are outside a pattern's business;
** print has nowhere to go (the library never prints); collectgarbage could
** defeat the memory accounting; math.random would make a pattern differ
** between loads; Lua's pattern matching (find, match, gmatch, gsub) can
** backtrack for hours inside one C call, where no hook can stop it; and
** table.move/string.pack are not needed and loop in C.
*/
static const char *const lp_no_base[] = {
  "dofile", "loadfile", "load", "require", "collectgarbage", "print", "xpcall", "warn", NULL};
static const char *const lp_no_string[] = {
  "dump", "find", "match", "gmatch", "gsub", "pack", "unpack", "packsize", NULL};
static const char *const lp_no_math[] = {"random", "randomseed", NULL};
static const char *const lp_no_table[] = {"move", NULL};

static int lp_open_sandbox(lua_State *L) {
  static const luaL_Reg libs[] = {
    {LUA_GNAME, luaopen_base}, {LUA_STRLIBNAME, luaopen_string}, {LUA_MATHLIBNAME, luaopen_math},
    {LUA_TABLIBNAME, luaopen_table}, {LUA_UTF8LIBNAME, luaopen_utf8}, {NULL, NULL}};
  for (const luaL_Reg *l = libs; l->name; l++) {
    luaL_requiref(L, l->name, l->func, 1);
    lua_pop(L, 1);
  }
  /* requiref leaves the libraries in a registry table; scripts cannot reach
  ** it, but drop it so nothing restored from there survives the sandbox. */
  lua_pushnil(L);
  lua_setfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  drop(L, NULL, lp_no_base);
  drop(L, LUA_STRLIBNAME, lp_no_string);
  drop(L, LUA_MATHLIBNAME, lp_no_math);
  drop(L, LUA_TABLIBNAME, lp_no_table);
  lua_pushcfunction(L, lp_pcall);
  lua_setglobal(L, "pcall");
  lua_getglobal(L, "setmetatable");
  lua_pushcclosure(L, lp_setmetatable, 1);
  lua_setglobal(L, "setmetatable");
  wrap(L, LUA_STRLIBNAME, "rep", lp_rep);
  wrap(L, LUA_TABLIBNAME, "insert", lp_plain_table);
  wrap(L, LUA_TABLIBNAME, "remove", lp_plain_table);
  /* How Lua abbreviates "@chunk" in its own messages: ask it. */
  lp_state *s = lp_state_of(L);
  lua_Debug ar;
  lua_pushfstring(L, "@%s", s->chunk);
  if (luaL_loadbufferx(L, "", 0, lua_tostring(L, -1), "t") != LUA_OK) return lua_error(L);
  lua_getinfo(L, ">S", &ar);
  memcpy(s->short_src, ar.short_src, sizeof s->short_src);
  lua_pop(L, 1);
  return 0;
}

lp_state *lp_state_open(cg_graph *g, const char *chunk, const lp_limits *lim, cg_err *e) {
  lp_state *s = calloc(1, sizeof *s);
  if (s) s->chunk = malloc(strlen(chunk) + 1);
  if (!s || !s->chunk) {
    free(s);
    cg_fail(e, SIEVE_ERR_NOMEM, "out of memory opening a Lua state");
    return NULL;
  }
  strcpy(s->chunk, chunk);
  s->g = g;
  s->insn_limit = lim && lim->instructions > 0 ? lim->instructions : LP_DEFAULT_INSTRUCTIONS;
  s->mem_limit = lim && lim->memory > 0 ? lim->memory : LP_DEFAULT_MEMORY;
  s->fallback_line = 1;
  s->L = lua_newstate(lp_alloc, s);
  if (!s->L) {
    lp_state_close(s);
    cg_fail(e, SIEVE_ERR_NOMEM, "out of memory opening a Lua state");
    return NULL;
  }
  lua_sethook(s->L, lp_hook, LUA_MASKCOUNT, LP_HOOK_EVERY);
  lua_pushcfunction(s->L, lp_open_sandbox);
  if (lp_state_call(s, 0, 0, e)) {
    lp_state_close(s);
    return NULL;
  }
  return s;
}

void lp_state_close(lp_state *s) {
  if (!s) return;
  if (s->L) {
    /* Finalizers the script left behind run in lua_close: stop them at
    ** their first instruction. */
    s->insn_hit = 1;
    lua_sethook(s->L, lp_hook, LUA_MASKCOUNT, 1);
    lua_close(s->L);
  }
  free(s->chunk);
  free(s);
}
