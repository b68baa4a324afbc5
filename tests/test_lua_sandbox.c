/*
** The sandbox: what a script cannot reach, and the limits that stop it.
*/
#include "test_lua_util.h"

static void no_files_processes_or_code(void **st) {
  static const char *const denied[][2] = {
    {"io.open('/etc/passwd')", "global 'io'"},
    {"os.execute('true')", "global 'os'"},
    {"os.exit(1)", "global 'os'"},
    {"require('os')", "global 'require'"},
    {"loadfile('/etc/passwd')", "global 'loadfile'"},
    {"dofile('/etc/passwd')", "global 'dofile'"},
    {"load('return 1')", "global 'load'"},
    {"string.dump(function() end)", "field 'dump'"},
    {"collectgarbage('stop')", "global 'collectgarbage'"},
    {"debug.getinfo(1)", "global 'debug'"},
    {"package.loadlib('x', 'y')", "global 'package'"},
    {"print('hi')", "global 'print'"},
    {"math.random()", "field 'random'"},
    {"coroutine.create(print)", "global 'coroutine'"},
    {"('x'):find('x')", "method 'find'"},
  };
  for (size_t i = 0; i < sizeof denied / sizeof denied[0]; i++)
    lt_load_fails(denied[i][0], NULL, SIEVE_ERR_SCRIPT, denied[i][1]);
}

static void binary_chunks_refused(void **st) {
  lt_load_fails("\x1bLua\x54\x00", NULL, SIEVE_ERR_SCRIPT, "binary chunk");
}

static void safe_library_still_there(void **st) {
  sieve_pattern *p = lt_load_ok(
      "local t = {3, 1, 2}; table.sort(t); assert(t[1] == 1)\n"
      "assert(string.format('%d', 7) == '7' and ('ab'):upper() == 'AB')\n"
      "assert(math.max(1, 4) == 4 and utf8.char(65) == 'A')\n"
      "local ok = pcall(error, 'x'); assert(not ok)\n"
      "table.insert(t, 4); assert(#t == 4)\n"
      "assert(('x'):rep(3) == 'xxx' and (''):rep(1 << 62) == '')\n"
      "return sieve.pattern{ name = 'ok', mask = sieve.dense() }",
      NULL);
  sieve_pattern_free(p);
}

static void endless_loop_hits_instruction_limit(void **st) {
  lt_load_fails("local x = 0\nwhile true do x = x + 1 end", NULL, SIEVE_ERR_LIMIT,
                "t.lua:2: instruction limit");
}

/* The limit is not the script's to catch. */
static void pcall_cannot_swallow_limits(void **st) {
  lt_load_fails("while true do pcall(function() while true do end end) end", NULL, SIEVE_ERR_LIMIT,
                "instruction limit");
  cg_err e = {0};
  cg_pattern *p;
  lp_limits lim = {0, 8u << 20};
  const char *src = "for i = 1, 100 do pcall(function() local t = {} for j = 1, 1e9 do t[j] = j end end) end\n"
                    "return sieve.pattern{ name = 'x', mask = sieve.dense() }";
  assert_int_equal(lp_load("m.lua", src, strlen(src), NULL, &lim, &p, &e), SIEVE_ERR_LIMIT);
  assert_non_null(strstr(e.msg, "memory limit"));
}

static void unbounded_allocation_hits_memory_limit(void **st) {
  lt_load_fails("local t = {}\nfor i = 1, 1e9 do t[i] = i end", NULL, SIEVE_ERR_LIMIT,
                "t.lua:2: memory limit of 256 MiB");
  lt_load_fails("local s = string.rep('x', 1 << 30)", NULL, SIEVE_ERR_LIMIT, "memory limit");
  cg_err e = {0};
  cg_pattern *p;
  lp_limits lim = {0, 4u << 20};
  const char *src = "local s = 'x'\nwhile true do s = s .. s end";
  assert_int_equal(lp_load("m.lua", src, strlen(src), NULL, &lim, &p, &e), SIEVE_ERR_LIMIT);
  assert_non_null(strstr(e.msg, "m.lua:2: memory limit of 4 MiB"));
}

/* Expression nodes live outside the Lua heap; they count all the same. */
static void expression_graph_counts_against_memory(void **st) {
  cg_err e = {0};
  cg_pattern *p;
  lp_limits lim = {0, 8u << 20};
  /* Wide, not deep: a chain would stop at the depth limit first. */
  const char *src = "local n = sieve.q.t\nfor i = 1, 1e8 do local m = n + i end";
  assert_int_equal(lp_load("g.lua", src, strlen(src), NULL, &lim, &p, &e), SIEVE_ERR_LIMIT);
  assert_non_null(strstr(e.msg, "g.lua:2: memory limit"));
}

static void custom_instruction_limit(void **st) {
  cg_err e = {0};
  cg_pattern *p;
  lp_limits lim = {100000, 0};
  const char *src = "for i = 1, 1e6 do end\nreturn sieve.pattern{ name = 'x', mask = sieve.dense() }";
  assert_int_equal(lp_load("i.lua", src, strlen(src), NULL, &lim, &p, &e), SIEVE_ERR_LIMIT);
  assert_non_null(strstr(e.msg, "i.lua:1: instruction limit of 100000"));
}

/* Finalizers run with hooks off, out of the instruction limit's reach. */
static void no_finalizers(void **st) {
  lt_load_fails("setmetatable({}, {__gc = function() while true do end end})", NULL,
                SIEVE_ERR_SCRIPT, "__gc");
}

/* Loops inside C library functions never reach the count hook. */
static void no_endless_c_loops(void **st) {
  lt_load_fails("table.move({}, 1, 1 << 62, 1)", NULL, SIEVE_ERR_SCRIPT, "field 'move'");
  lt_load_fails("local t = setmetatable({}, {__len = function() return 1 << 40 end})\n"
                "table.insert(t, 1, 0)",
                NULL, SIEVE_ERR_SCRIPT, "t.lua:2:");
}

static void expressions_are_sealed(void **st) {
  lt_load_fails("local mt = getmetatable(sieve.q.t); mt.__add = nil", NULL, SIEVE_ERR_SCRIPT,
                "index a string value");
  lt_load_fails("sieve.q.t = 1", NULL, SIEVE_ERR_SCRIPT, "q is read-only");
  lt_load_fails("sieve.layout.identity.kind = 2", NULL, SIEVE_ERR_SCRIPT, "read-only");
}

int main(void) {
  const struct CMUnitTest t[] = {
    cmocka_unit_test(no_files_processes_or_code),
    cmocka_unit_test(binary_chunks_refused),
    cmocka_unit_test(safe_library_still_there),
    cmocka_unit_test(endless_loop_hits_instruction_limit),
    cmocka_unit_test(pcall_cannot_swallow_limits),
    cmocka_unit_test(unbounded_allocation_hits_memory_limit),
    cmocka_unit_test(expression_graph_counts_against_memory),
    cmocka_unit_test(custom_instruction_limit),
    cmocka_unit_test(no_finalizers),
    cmocka_unit_test(no_endless_c_loops),
    cmocka_unit_test(expressions_are_sealed),
  };
  return cmocka_run_group_tests(t, NULL, NULL);
}
