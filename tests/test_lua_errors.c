/*
** Bad scripts and bad arguments: each gets a status and a message naming
** the cause and, for scripts, the file and line.
*/
#include "test_lua_util.h"

static void syntax_error_names_line(void **st) {
  lt_load_fails("local a = 1\nlocal b = 2\nlocal c = = 3\n", NULL, SIEVE_ERR_SCRIPT, "t.lua:3:");
  lt_load_fails("return sieve.pattern{ name = 'x'\n  mask = sieve.dense() }", NULL, SIEVE_ERR_SCRIPT,
                "t.lua:2: '}' expected");
}

static void runtime_error_names_line(void **st) {
  lt_load_fails("local a = 1\nlocal b = a + nil\n", NULL, SIEVE_ERR_SCRIPT,
                "t.lua:2: attempt to perform arithmetic on a nil value");
  lt_load_fails("\n\nerror('boom')", NULL, SIEVE_ERR_SCRIPT, "t.lua:3: boom");
  lt_load_fails("error('no position', 0)", NULL, SIEVE_ERR_SCRIPT, "t.lua:1: no position");
  lt_load_fails("error({})", NULL, SIEVE_ERR_SCRIPT, "t.lua:1: error object is a table value");
  /* Errors found inside the DSL point at the script's line, not the prelude. */
  lt_load_fails("local w = 'x'\n\nlocal m = sieve.frame_window(w)", NULL, SIEVE_ERR_SCRIPT,
                "t.lua:3: sieve.frame_window: w must be an integer, got the string \"x\"");
  lt_load_fails("local m = sieve.mask(function(q, k)\n  return q.t:lt(k.t) & q.missing\nend)", NULL,
                SIEVE_ERR_SCRIPT, "t.lua:2: q has no field 'missing'");
  lt_load_fails("local m = sieve.anchors{frames = {0}, bothh = true}", NULL, SIEVE_ERR_SCRIPT,
                "t.lua:1: sieve.anchors: unknown key 'bothh'");
}

static void comparison_operators_explained(void **st) {
  lt_load_fails("local m = sieve.mask(function(q, k)\n  return q.t < k.t\nend)", NULL, SIEVE_ERR_SCRIPT,
                "t.lua:2: Lua cannot turn a comparison into a graph node: use a:lt(b) instead of a < b");
  lt_load_fails("local m = sieve.mask(function(q, k) return q.t >= 3 end)", NULL, SIEVE_ERR_SCRIPT,
                "a:ge(b) for a >= b");
  lt_load_fails("local m = sieve.mask(function(q, k) return q.t == k.t end)", NULL, SIEVE_ERR_SCRIPT,
                "use a:eq(b) instead of a == b");
  /* == against a number never reaches a metamethod: the Lua boolean it
  ** gives is caught where a mask is expected. */
  lt_load_fails("local m = sieve.mask(function(q, k)\n  return q.t == 3\nend)", NULL, SIEVE_ERR_SCRIPT,
                "t.lua:1: sieve.mask: the function's result is a Lua boolean, not a mask");
  lt_load_fails("local m = sieve.mask(function(q, k) return not q.text end)", NULL, SIEVE_ERR_SCRIPT,
                "&, |, ~ instead");
}

static void wrong_types(void **st) {
  lt_load_fails("return sieve.pattern{ name = 'x', mask = 1 }", NULL, SIEVE_ERR_SCRIPT,
                "t.lua:1: sieve.pattern: mask must be a mask (a boolean expression), got the number 1");
  lt_load_fails("return sieve.pattern{ name = 'x',\n  mask = sieve.q.t + 1 }", NULL, SIEVE_ERR_SCRIPT,
                "mask is an integer expression (made at line 2)");
  lt_load_fails("return sieve.pattern{ name = 'x', mask = nil }", NULL, SIEVE_ERR_SCRIPT, "needs a mask");
  lt_load_fails("local m = sieve.q.t + 1.5", NULL, SIEVE_ERR_SCRIPT, "1.5 is not an integer");
  lt_load_fails("local m = sieve.q.t + 'a'", NULL, SIEVE_ERR_SCRIPT, "got a string");
  lt_load_fails("local m = sieve.q.t + (1 << 40)", NULL, SIEVE_ERR_SCRIPT, "does not fit in 32 bits");
  lt_load_fails("local c = sieve.q.t * 0 + 65536\nlocal d = c * c", NULL, SIEVE_ERR_SCRIPT,
                "t.lua:2: constant expression 4294967296 does not fit in 32 bits");
  lt_load_fails("local m = sieve.q.t // 0", NULL, SIEVE_ERR_SCRIPT, "division by zero");
  lt_load_fails("local m = sieve.q.t & sieve.k.t", NULL, SIEVE_ERR_SCRIPT, "needs boolean operands");
  lt_load_fails("local m = sieve.q.text + 1", NULL, SIEVE_ERR_SCRIPT, "needs integer operands");
  lt_load_fails("local m = sieve.q.t:eq(sieve.k.text)", NULL, SIEVE_ERR_SCRIPT, "eq compares");
  lt_load_fails("local m = sieve.q.t .. 'x'", NULL, SIEVE_ERR_SCRIPT, "is not defined on sieve expressions");
  lt_load_fails("local m = sieve.q.t:foo()", NULL, SIEVE_ERR_SCRIPT, "no field 'foo'");
  lt_load_fails("local m = sieve.choose(sieve.q.text, 1, sieve.dense())", NULL, SIEVE_ERR_SCRIPT,
                "branches differ in type");
}

static void bad_declarations(void **st) {
  lt_load_fails("return sieve.pattern{ name = 'x', mask = sieve.dense(), blok = {} }", NULL, SIEVE_ERR_SCRIPT,
                "unknown key 'blok'");
  lt_load_fails("return sieve.pattern{ name = 'x', mask = sieve.dense(), block = {q = 100} }", NULL,
                SIEVE_ERR_SCRIPT, "block.q must be a multiple of 64");
  /* Sizes the tables could take but no kernel runs are refused at load. */
  lt_load_fails("return sieve.pattern{ name = 'x', mask = sieve.dense(), block = {q = 32, k = 32} }", NULL,
                SIEVE_ERR_SCRIPT, "block.q must be a multiple of 64 (kernels take 64 or 128 query rows");
  lt_load_fails("return sieve.pattern{ name = 'x', mask = sieve.dense(), block = {q = 64, k = 48} }", NULL,
                SIEVE_ERR_SCRIPT, "block.k must be a multiple of 32");
  lt_load_fails("return sieve.pattern{ name = 'x', mask = sieve.dense(), block = {k = 2048} }", NULL,
                SIEVE_ERR_SCRIPT, "block.k must be at most 1024");
  lt_load_fails("return sieve.pattern{ name = 'x', mask = sieve.dense(), block = {k = -16} }", NULL,
                SIEVE_ERR_SCRIPT, "block.k must be at least 1");
  lt_load_fails("return sieve.pattern{ name = 'a b', mask = sieve.dense() }", NULL, SIEVE_ERR_SCRIPT,
                "may use letters");
  lt_load_fails("return sieve.pattern{ mask = sieve.dense() }", NULL, SIEVE_ERR_SCRIPT, "name must be a name");
  lt_load_fails("return sieve.pattern{ name = 'x', mask = sieve.dense(), layout = 'tile' }", NULL,
                SIEVE_ERR_SCRIPT, "layout must be sieve.layout.identity");
  lt_load_fails("return sieve.pattern{ name = 'x', mask = sieve.dense(), geometry = {text_pos = 'middle'} }",
                NULL, SIEVE_ERR_SCRIPT, "text_pos must be \"before\" or \"after\"");
  lt_load_fails("return sieve.pattern{ name = 'x', mask = sieve.dense(), selection = sieve.search{recall = 2, "
                "steps = {1}} }",
                NULL, SIEVE_ERR_SCRIPT, "recall must be a number in (0, 1]");
  lt_load_fails("local s = sieve.search{recall = 0.9}", NULL, SIEVE_ERR_SCRIPT, "steps is required");
  lt_load_fails("local s = sieve.search{recall = 0.9, tiers = 0.8, steps = {1}}", NULL, SIEVE_ERR_SCRIPT,
                "tiers needs a top-k sparsity");
  lt_load_fails("local s = sieve.search{sparsity = 0.8, tiers = 1, steps = {1}}", NULL, SIEVE_ERR_SCRIPT,
                "tiers must be a recall in [0, 1)");
  lt_load_fails("local s = sieve.search{sparsity = 0.8, text_sink = 1, steps = {1}}", NULL, SIEVE_ERR_SCRIPT,
                "text_sink must be true or false");
  lt_load_fails("local s = sieve.search{steps = {1}, levels = {128, 512}}", NULL, SIEVE_ERR_SCRIPT,
                "coarse to fine");
  lt_load_fails("local l = sieve.layout.tile{0, 1, 1}", NULL, SIEVE_ERR_SCRIPT, "tile.t must be at least 1");
  lt_load_fails("return sieve.pattern{ name = 'x', params = {w = 1}, mask = sieve.dense() }", NULL,
                SIEVE_ERR_SCRIPT, "sieve.params");
  lt_load_fails("return sieve.pattern{ name = 'x', classes = {{name = 'a', mask = sieve.dense()},\n"
                "  {name = 'b', mask = sieve.dense()}} }",
                NULL, SIEVE_ERR_SCRIPT, "heads is required");
  lt_load_fails("return sieve.pattern{ name = 'x', classes = {{name = 'a', mask = sieve.dense()}},\n"
                "  heads = {'a', 'c'} }",
                NULL, SIEVE_ERR_SCRIPT, "heads[2] must name a class (a), got the string \"c\"");
  lt_load_fails("return sieve.pattern{ name = 'x', classes = {{name = 'a', mask = sieve.dense()},\n"
                "  {name = 'a', mask = sieve.dense()}}, heads = {'a'} }",
                NULL, SIEVE_ERR_SCRIPT, "two classes are named 'a'");
  lt_load_fails("return sieve.pattern{ name = 'x', mask = sieve.dense(), classes = {} }", NULL,
                SIEVE_ERR_SCRIPT, "mask or classes, not both");
}

static void script_must_return_a_pattern(void **st) {
  lt_load_fails("local x = 1\nlocal y = 2\n", NULL, SIEVE_ERR_SCRIPT,
                "t.lua:2: the script must end with `return sieve.pattern{...}`; it returned nil");
  lt_load_fails("return {name = 'forged'}", NULL, SIEVE_ERR_SCRIPT, "it returned a table");
  lt_load_fails("", NULL, SIEVE_ERR_SCRIPT, "t.lua:1: the script must end");
}

static const char *const with_params =
    "local param = sieve.params{ window = 1, on = true }\n"
    "return sieve.pattern{ name = 'x', mask = sieve.frame_window(param.window) }";

static void bad_overrides(void **st) {
  lt_load_fails(with_params, (const char *[]){"windw=2", NULL}, SIEVE_ERR_ARG,
                "t.lua:1: unknown param 'windw' (this pattern's params: on, window)");
  lt_load_fails(with_params, (const char *[]){"window=abc", NULL}, SIEVE_ERR_ARG,
                "param 'window' takes a number, got 'abc'");
  lt_load_fails(with_params, (const char *[]){"window=1.5", NULL}, SIEVE_ERR_ARG,
                "param 'window' takes an integer, got '1.5'");
  lt_load_fails(with_params, (const char *[]){"window=inf", NULL}, SIEVE_ERR_ARG, "takes a number");
  lt_load_fails(with_params, (const char *[]){"on=maybe", NULL}, SIEVE_ERR_ARG,
                "param 'on' takes true or false, got 'maybe'");
  lt_load_fails(with_params, (const char *[]){"window", NULL}, SIEVE_ERR_ARG,
                "override 'window' is not of the form name=value");
  lt_load_fails(with_params, (const char *[]){"=3", NULL}, SIEVE_ERR_ARG, "not of the form");
  /* The override is named as one safe line: no terminal escapes, no newline. */
  lt_load_fails(with_params, (const char *[]){"\033[2J\nwindow", NULL}, SIEVE_ERR_ARG,
                "override '\\x1b[2J\\nwindow' is not of the form name=value");
  /* A pattern with no params: the error is placed at its sieve.pattern. */
  lt_load_fails("local m = sieve.dense()\nreturn sieve.pattern{ name = 'x', mask = m }",
                (const char *[]){"w=1", NULL}, SIEVE_ERR_ARG,
                "t.lua:2: unknown param 'w': the pattern declares no params");
  lt_load_fails("local p = sieve.params{ w = 1 }\nlocal v = p.ww", NULL, SIEVE_ERR_SCRIPT,
                "t.lua:2: unknown param 'ww'");
  lt_load_fails("local p = sieve.params{ w = 1 }\np.w = 2", NULL, SIEVE_ERR_SCRIPT, "read-only");
  lt_load_fails("local p = sieve.params{ w = {} }", NULL, SIEVE_ERR_SCRIPT, "must default to a number");
  lt_load_fails("sieve.params{ w = 1 }\nsieve.params{ w = 1 }", NULL, SIEVE_ERR_SCRIPT,
                "t.lua:2: sieve.params may be called only once");
}

static void api_arguments(void **st) {
  sieve_ctx *ctx;
  sieve_pattern *p = (sieve_pattern *)1;
  assert_int_equal(sieve_open(&ctx), SIEVE_OK);
  assert_int_equal(sieve_pattern_load(ctx, "/nonexistent/x.lua", NULL, &p), SIEVE_ERR_IO);
  assert_null(p);
  assert_non_null(strstr(sieve_errmsg(ctx), "/nonexistent/x.lua"));
  assert_int_equal(sieve_pattern_load(ctx, "/", NULL, &p), SIEVE_ERR_IO);
  assert_int_equal(sieve_pattern_load(ctx, NULL, NULL, &p), SIEVE_ERR_ARG);
  assert_int_equal(sieve_pattern_load_string(ctx, "x", NULL, NULL, &p), SIEVE_ERR_ARG);
  assert_int_equal(sieve_pattern_load_string(NULL, "x", "syntax(", NULL, &p), SIEVE_ERR_SCRIPT);
  assert_int_equal(sieve_pattern_load_string(ctx, NULL, "return sieve.pattern{name='n', mask=sieve.dense()}",
                                             NULL, &p),
                   SIEVE_OK);
  assert_string_equal(sieve_errmsg(ctx), "");
  assert_string_equal(lp_pattern_ir(p)->source, "<string>");
  sieve_pattern_free(p);
  sieve_pattern_free(NULL);
  sieve_close(ctx);
}

/* Lua abbreviates long chunk names in its messages; sieve's keep them whole. */
static void long_chunk_names(void **st) {
  const char *name = "a/very/long/directory/name/that/goes/on/and/on/and/on/patterns/broken.lua";
  sieve_ctx *ctx;
  sieve_pattern *p;
  assert_int_equal(sieve_open(&ctx), SIEVE_OK);
  assert_int_equal(sieve_pattern_load_string(ctx, name, "local a = 1\nlocal b = a.x", NULL, &p),
                   SIEVE_ERR_SCRIPT);
  char want[256];
  snprintf(want, sizeof want, "%s:2: attempt to index a number value", name);
  assert_non_null(strstr(sieve_errmsg(ctx), want));
  assert_int_equal(sieve_pattern_load_string(ctx, name, "local a = 1\nlocal b = = 2", NULL, &p),
                   SIEVE_ERR_SCRIPT);
  snprintf(want, sizeof want, "%s:2:", name);
  assert_non_null(strstr(sieve_errmsg(ctx), want));
  sieve_close(ctx);
}

/* Expression graphs a kernel could not be compiled from in bounded time
** (or a deep one the loader used to crash on) stop at load, naming the line. */
static void graph_limits(void **st) {
  lt_load_fails("local e = sieve.q.t\nfor i = 1, 60000 do e = e * 3 + sieve.k.t end\n"
                "return sieve.pattern{name='x', mask=e:eq(0)}",
                NULL, SIEVE_ERR_LIMIT, "t.lua:2: expression nests deeper than 256 operations");
  lt_load_fails("local m = {}\nfor i = 1, 6000 do m[i] = sieve.q.t:eq(i) end\n"
                "return sieve.pattern{name='x', mask=sieve.union(m)}",
                NULL, SIEVE_ERR_LIMIT, "t.lua:3: the masks have 18000 distinct operations");
  lt_load_fails("local t = {}\nfor i = 1, 4096 do t[i] = (sieve.q.t * 512 + sieve.k.x * i) % (i + 7) end\n"
                "while #t > 1 do local u = {} for i = 1, #t, 2 do u[#u+1] = t[i] + t[i+1] end t = u end\n"
                "local m = t[1]:eq(0)\nreturn sieve.pattern{name='x', mask=m}",
                NULL, SIEVE_ERR_LIMIT, "t.lua:4: the masks have 20489 distinct operations, more than the 8192");
  /* At the limits, loads succeed. */
  sieve_pattern_free(lt_load_ok("local e = sieve.q.t\nfor i = 1, 120 do e = e * 3 + sieve.k.t end\n"
                                "return sieve.pattern{name='x', mask=e:eq(0)}", NULL));
  /* A union of many masks is wide, not deep. */
  sieve_pattern_free(lt_load_ok("local m = {}\nfor i = 1, 2000 do m[i] = sieve.q.t:eq(i) end\n"
                                "return sieve.pattern{name='x', mask=sieve.union(m)}", NULL));
}

int main(void) {
  const struct CMUnitTest t[] = {
    cmocka_unit_test(syntax_error_names_line),
    cmocka_unit_test(runtime_error_names_line),
    cmocka_unit_test(comparison_operators_explained),
    cmocka_unit_test(wrong_types),
    cmocka_unit_test(bad_declarations),
    cmocka_unit_test(script_must_return_a_pattern),
    cmocka_unit_test(bad_overrides),
    cmocka_unit_test(api_arguments),
    cmocka_unit_test(long_chunk_names),
    cmocka_unit_test(graph_limits),
  };
  return cmocka_run_group_tests(t, NULL, NULL);
}
