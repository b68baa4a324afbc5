/*
** The pattern DSL: primitives and combinators evaluated at chosen token
** coordinates, tracing, canonical IR, heads, params, layouts, selections.
*/
#include "test_lua_util.h"

static const lt_tok T0 = TXT(0), T1 = TXT(1);

static void frame_and_token_windows(void **st) {
  sieve_pattern *p = lt_mask("sieve.frame_window(1)");
  assert_true(lt_at(p, VID(2, 0, 0, 10), VID(3, 5, 5, 99)));
  assert_true(lt_at(p, VID(2, 0, 0, 10), VID(1, 5, 5, 3)));
  assert_false(lt_at(p, VID(2, 0, 0, 10), VID(4, 0, 0, 12)));
  assert_false(lt_at(p, T0, VID(0, 0, 0, 5)));  /* video-only primitive */
  assert_false(lt_at(p, VID(0, 0, 0, 5), T0));
  sieve_pattern_free(p);
  p = lt_mask("sieve.token_window(2)");
  assert_true(lt_at(p, VID(0, 0, 0, 10), VID(9, 9, 9, 12)));
  assert_false(lt_at(p, VID(0, 0, 0, 10), VID(0, 0, 0, 13)));
  assert_true(lt_at(p, T0, T1));  /* over all tokens, text included */
  sieve_pattern_free(p);
}

static void tile_window(void **st) {
  sieve_pattern *p = lt_mask("sieve.tile_window(1, 0, 0, {2, 4, 4})");
  assert_true(lt_at(p, VID(0, 0, 0, 0), VID(3, 3, 3, 0)));   /* tiles t 0 and 1 */
  assert_false(lt_at(p, VID(0, 0, 0, 0), VID(4, 0, 0, 0)));  /* tile t 2 */
  assert_false(lt_at(p, VID(0, 3, 0, 0), VID(0, 4, 0, 0)));  /* other y tile, wy = 0 */
  assert_true(lt_at(p, VID(1, 3, 3, 0), VID(0, 0, 0, 0)));
  assert_false(lt_at(p, T0, VID(0, 0, 0, 0)));
  sieve_pattern_free(p);
  sieve_pattern *q = lt_mask("sieve.tile_window(1, 0, 0, {t = 2, y = 4, x = 4})");
  p = lt_mask("sieve.tile_window(1, 0, 0, {2, 4, 4})");
  assert_int_equal(sieve_pattern_hash(p), sieve_pattern_hash(q));
  sieve_pattern_free(p);
  sieve_pattern_free(q);
}

static void anchors(void **st) {
  sieve_pattern *p = lt_mask("sieve.anchors{frames = {0, 5}}");
  assert_true(lt_at(p, VID(3, 0, 0, 0), VID(5, 1, 1, 0)));   /* anchor key */
  assert_true(lt_at(p, VID(0, 0, 0, 0), VID(7, 1, 1, 0)));   /* anchor query (both) */
  assert_false(lt_at(p, VID(3, 0, 0, 0), VID(4, 1, 1, 0)));
  assert_false(lt_at(p, T0, VID(0, 0, 0, 0)));
  sieve_pattern_free(p);
  p = lt_mask("sieve.anchors{frames = {0}, both = false, text = true}");
  assert_false(lt_at(p, VID(0, 0, 0, 0), VID(7, 1, 1, 0)));
  assert_true(lt_at(p, VID(3, 0, 0, 0), VID(0, 1, 1, 0)));
  assert_true(lt_at(p, VID(3, 0, 0, 0), T0));
  assert_false(lt_at(p, T0, VID(3, 0, 0, 0)));
  sieve_pattern_free(p);
  sieve_pattern *g = lt_mask("sieve.global_frames{5, 0, 5}");
  p = lt_mask("sieve.anchors{frames = {0, 5}}");
  assert_int_equal(sieve_pattern_hash(p), sieve_pattern_hash(g));
  sieve_pattern_free(p);
  sieve_pattern_free(g);
}

static void rotating_anchors(void **st) {
  sieve_pattern *p = lt_mask("sieve.rotating_anchors{period = 4}");
  /* (f + step + layer) % 4 == 0: at step 1, layer 2 frame 1 is an anchor */
  assert_true(lt_eval(p, 0, VID(10, 0, 0, 0), VID(1, 0, 0, 0), 0, 1, 2));
  assert_false(lt_eval(p, 0, VID(10, 0, 0, 0), VID(2, 0, 0, 0), 0, 1, 2));
  assert_true(lt_eval(p, 0, VID(10, 0, 0, 0), VID(2, 0, 0, 0), 0, 1, 1));
  assert_true(lt_eval(p, 0, VID(5, 0, 0, 0), VID(2, 0, 0, 0), 0, 1, 2));  /* query 5 is one */
  sieve_pattern_free(p);
  p = lt_mask("sieve.rotating_anchors{period = 3, stride = 2, layer_stride = 0, both = false}");
  assert_true(lt_eval(p, 0, VID(0, 0, 0, 0), VID(2, 0, 0, 0), 0, 2, 7));  /* 2 + 4 = 6 */
  assert_false(lt_eval(p, 0, VID(2, 0, 0, 0), VID(1, 0, 0, 0), 0, 2, 7));
  sieve_pattern_free(p);
}

static void spatial_temporal_causal_text(void **st) {
  sieve_pattern *p = lt_mask("sieve.spatial()");
  assert_true(lt_at(p, VID(2, 0, 0, 0), VID(2, 9, 9, 0)));
  assert_false(lt_at(p, VID(2, 0, 0, 0), VID(3, 0, 0, 0)));
  sieve_pattern_free(p);
  p = lt_mask("sieve.temporal()");
  assert_true(lt_at(p, VID(2, 4, 5, 0), VID(9, 4, 5, 0)));
  assert_false(lt_at(p, VID(2, 4, 5, 0), VID(2, 4, 6, 0)));
  assert_false(lt_at(p, T0, T1));
  sieve_pattern_free(p);
  p = lt_mask("sieve.causal_frames()");
  assert_true(lt_at(p, VID(3, 0, 0, 0), VID(3, 1, 1, 0)));
  assert_true(lt_at(p, VID(3, 0, 0, 0), VID(0, 1, 1, 0)));
  assert_false(lt_at(p, VID(3, 0, 0, 0), VID(4, 1, 1, 0)));
  sieve_pattern_free(p);
  p = lt_mask("sieve.text_rows()");
  assert_true(lt_at(p, T0, VID(3, 0, 0, 0)));
  assert_false(lt_at(p, VID(3, 0, 0, 0), T0));
  sieve_pattern_free(p);
  p = lt_mask("sieve.text_cols()");
  assert_true(lt_at(p, VID(3, 0, 0, 0), T0));
  sieve_pattern_free(p);
  p = lt_mask("sieve.dense()");
  assert_true(lt_at(p, T0, VID(3, 0, 0, 0)));
  sieve_pattern_free(p);
}

static void combinators(void **st) {
  sieve_pattern *p = lt_mask("sieve.difference(sieve.frame_window(1), sieve.spatial())");
  assert_true(lt_at(p, VID(2, 0, 0, 0), VID(3, 0, 0, 0)));
  assert_false(lt_at(p, VID(2, 0, 0, 0), VID(2, 0, 0, 0)));
  sieve_pattern_free(p);
  p = lt_mask("sieve.intersection(sieve.frame_window(2), sieve.causal_frames())");
  assert_true(lt_at(p, VID(3, 0, 0, 0), VID(1, 0, 0, 0)));
  assert_false(lt_at(p, VID(3, 0, 0, 0), VID(4, 0, 0, 0)));
  assert_false(lt_at(p, VID(3, 0, 0, 0), VID(0, 0, 0, 0)));
  sieve_pattern_free(p);
  /* Empty conjunctions and disjunctions (qsort is not handed their NULL). */
  p = lt_mask("sieve.all() & ~sieve.any()");
  assert_true(lt_at(p, VID(3, 0, 0, 0), VID(2, 1, 0, 0)));
  sieve_pattern_free(p);
  p = lt_mask("sieve.union{sieve.spatial(), sieve.text_cols()}");
  assert_true(lt_at(p, VID(3, 0, 0, 0), T0));
  assert_true(lt_at(p, VID(3, 0, 0, 0), VID(3, 1, 0, 0)));
  assert_false(lt_at(p, VID(3, 0, 0, 0), VID(2, 1, 0, 0)));
  sieve_pattern_free(p);
}

static void per_head(void **st) {
  sieve_pattern *p = lt_mask("sieve.per_head{sieve.spatial(), sieve.temporal(), sieve.dense()}");
  lt_tok a = VID(2, 1, 1, 0), same_frame = VID(2, 5, 5, 0), same_pos = VID(7, 1, 1, 0);
  assert_true(lt_eval(p, 0, a, same_frame, 0, 0, 0));
  assert_false(lt_eval(p, 0, a, same_pos, 0, 0, 0));
  assert_false(lt_eval(p, 0, a, same_frame, 1, 0, 0));
  assert_true(lt_eval(p, 0, a, same_pos, 1, 0, 0));
  assert_true(lt_eval(p, 0, a, VID(9, 9, 9, 0), 2, 0, 0));
  assert_true(lt_eval(p, 0, a, same_frame, 3, 0, 0));  /* head 3 -> mask 1 again */
  sieve_pattern_free(p);
  /* A list and a function of the symbolic head trace to the same graph. */
  sieve_pattern *l = lt_mask("sieve.per_head{sieve.spatial(), sieve.temporal()}");
  sieve_pattern *f = lt_mask(
      "sieve.per_head(function(h) return sieve.choose((h % 2):eq(0), sieve.spatial(), sieve.temporal()) end)");
  assert_int_equal(sieve_pattern_hash(l), sieve_pattern_hash(f));
  sieve_pattern_free(l);
  sieve_pattern_free(f);
}

static void arithmetic_semantics(void **st) {
  sieve_pattern *p = lt_mask("sieve.mask(function(q, k) return (q.t // 2):eq(-1) & (q.t % 3):eq(2) end)");
  assert_true(lt_at(p, VID(-1, 0, 0, 0), VID(0, 0, 0, 0)));   /* floor division and modulo */
  assert_false(lt_at(p, VID(1, 0, 0, 0), VID(0, 0, 0, 0)));
  sieve_pattern_free(p);
  sieve_pattern *a = lt_mask("sieve.mask(function(q, k) return (q.t / 3):eq(k.t) end)");
  sieve_pattern *b = lt_mask("sieve.mask(function(q, k) return (q.t // 3):eq(k.t) end)");
  assert_int_equal(sieve_pattern_hash(a), sieve_pattern_hash(b));  /* / is floor division too */
  sieve_pattern_free(a);
  sieve_pattern_free(b);
  p = lt_mask("sieve.mask(function(q, k) return sieve.max(q.t, k.t, 3):eq(5) & "
              "sieve.min(q.y, -k.y):eq(-2) & sieve.abs(q.x - 10):ge(2) & (q.x * 2 - 1):ne(7) end)");
  assert_true(lt_at(p, VID(5, 4, 0, 0), VID(1, 2, 0, 0)));
  assert_false(lt_at(p, VID(5, 4, 9, 0), VID(1, 2, 0, 0)));  /* |9 - 10| < 2 */
  assert_false(lt_at(p, VID(5, 4, 4, 0), VID(1, 2, 0, 0)));  /* 4*2-1 == 7 */
  sieve_pattern_free(p);
  p = lt_mask("sieve.mask(function(q, k) return (q.text ~ k.text) | ~(q.t:gt(k.t) & true) end)");
  assert_true(lt_at(p, T0, VID(0, 0, 0, 0)));
  assert_false(lt_at(p, VID(5, 0, 0, 0), VID(1, 0, 0, 0)));
  assert_true(lt_at(p, VID(1, 0, 0, 0), VID(1, 0, 0, 0)));
  sieve_pattern_free(p);
  p = lt_mask("sieve.mask(function(q, k) return sieve.choose(q.text, 0, q.t + 1):le(k.t) end)");
  assert_true(lt_at(p, T0, VID(0, 0, 0, 0)));
  assert_false(lt_at(p, VID(3, 0, 0, 0), VID(3, 0, 0, 0)));
  sieve_pattern_free(p);
  p = lt_mask("sieve.mask(function(q, k, ctx) return (ctx.head + ctx.step * 10 + ctx.layer * 100):eq(q.t) "
              "& sieve.head:eq(ctx.head) end)");
  assert_true(lt_eval(p, 0, VID(321, 0, 0, 0), VID(0, 0, 0, 0), 1, 2, 3));
  sieve_pattern_free(p);
}

/* A traced function equal to a primitive is the same graph node. */
static void tracing_equals_primitive(void **st) {
  sieve_pattern *a = lt_mask("sieve.frame_window(1)");
  sieve_pattern *b = lt_mask(
      "sieve.mask(function(q, k) return (q.t - k.t):abs():le(1) & ~k.text & ~q.text end)");
  sieve_pattern *c = lt_mask(
      "sieve.mask(function(q, k) return sieve.all(~q.text, (q.t - k.t):abs():le(1), ~k.text) end)");
  assert_int_equal(sieve_pattern_hash(a), sieve_pattern_hash(b));
  assert_int_equal(sieve_pattern_hash(a), sieve_pattern_hash(c));
  assert_string_equal(sieve_pattern_ir(a), sieve_pattern_ir(b));
  assert_int_equal(lp_pattern_ir(a)->classes[0].mask, lp_pattern_ir(b)->classes[0].mask);
  sieve_pattern_free(a);
  sieve_pattern_free(b);
  sieve_pattern_free(c);
  /* Within one script: the primitive and the traced function give one ref. */
  sieve_pattern *p = lt_load_ok(
      "local a = sieve.frame_window(2)\n"
      "local b = sieve.mask(function(q, k) return ~q.text & ~k.text & (q.t - k.t):abs():le(2) end)\n"
      "return sieve.pattern{ name = 'two', classes = { {name = 'a', mask = a}, {name = 'b', mask = b} },\n"
      "  heads = {'a', 'b'} }",
      NULL);
  const cg_pattern *ir = lp_pattern_ir(p);
  assert_int_equal(ir->classes[0].mask, ir->classes[1].mask);
  sieve_pattern_free(p);
}

static void union_order_does_not_matter(void **st) {
  static const char *const forms[] = {
    "sieve.union(sieve.frame_window(1), sieve.text_rows(), sieve.global_frames{0})",
    "sieve.union(sieve.global_frames{0}, sieve.frame_window(1), sieve.text_rows())",
    "sieve.text_rows() | (sieve.global_frames{0} | sieve.frame_window(1))",
    "(sieve.global_frames{0} | sieve.text_rows()) | sieve.frame_window(1) | sieve.text_rows()",
    "sieve.union{sieve.text_rows(), sieve.union(sieve.frame_window(1), sieve.global_frames{0})}",
  };
  sieve_pattern *first = lt_mask(forms[0]);
  for (size_t i = 1; i < sizeof forms / sizeof forms[0]; i++) {
    sieve_pattern *p = lt_mask(forms[i]);
    assert_string_equal(sieve_pattern_ir(first), sieve_pattern_ir(p));
    sieve_pattern_free(p);
  }
  sieve_pattern_free(first);
}

static void ir_is_stable(void **st) {
  const char *src = "local param = sieve.params{ w = 1 }\n"
                    "return sieve.pattern{ name = 's', mask = sieve.frame_window(param.w) | sieve.text_cols() }";
  sieve_pattern *a = lt_load_ok(src, NULL), *b = lt_load_ok(src, NULL);
  assert_string_equal(sieve_pattern_ir(a), sieve_pattern_ir(b));
  assert_int_equal(sieve_pattern_hash(a), sieve_pattern_hash(b));
  assert_string_equal(sieve_pattern_name(a), "s");
  const char *ov[] = {"w=2", NULL};
  sieve_pattern *c = lt_load_ok(src, ov);
  assert_int_not_equal(sieve_pattern_hash(a), sieve_pattern_hash(c));
  sieve_pattern_free(a);
  sieve_pattern_free(b);
  sieve_pattern_free(c);
}

static const char *const two_classes =
    "return sieve.pattern{ name = 'h', classes = {\n"
    "  {name = 'a', mask = sieve.spatial()},\n"
    "  {name = 'b', layout = sieve.layout.transpose, mask = sieve.temporal()} },\n"
    "  heads = %s }";

static const cg_pattern *heads_of(const char *heads, sieve_pattern **keep) {
  char src[1024];
  snprintf(src, sizeof src, two_classes, heads);
  *keep = lt_load_ok(src, NULL);
  return lp_pattern_ir(*keep);
}

static void head_classes(void **st) {
  sieve_pattern *k;
  const cg_pattern *p = heads_of("{'a', 'a'}", &k);
  assert_int_equal(p->period, 1);
  assert_int_equal(p->head_class[0], 0);
  sieve_pattern_free(k);
  p = heads_of("{'a', 'b', 'a'}", &k);
  assert_int_equal(p->period, 3);
  assert_int_equal(cg_pattern_class(p, 4)->layout.kind, CG_LAYOUT_TRANSPOSE);
  sieve_pattern_free(k);
  p = heads_of("{'b', 'a', 'b', 'a'}", &k);
  assert_int_equal(p->period, 2);
  assert_string_equal(cg_pattern_class(p, 0)->name, "b");
  sieve_pattern_free(k);
  p = heads_of("function(h) return h % 3 == 0 and 'a' or 'b' end", &k);
  assert_int_equal(p->period, 3);
  assert_int_equal(p->head_class[0], 0);
  assert_int_equal(p->head_class[1], 1);
  assert_int_equal(p->head_class[2], 1);
  sieve_pattern_free(k);
  p = heads_of("function(h) return h < 20 and 'a' or 'b' end", &k);
  assert_int_equal(p->period, CG_MAX_HEADS);
  assert_int_equal(p->head_class[19], 0);
  assert_int_equal(p->head_class[20], 1);
  sieve_pattern_free(k);
}

static void params(void **st) {
  const char *src = "local param = sieve.params{ window = 1, on = true, mode = 'x', ratio = 0.5 }\n"
                    "assert(param.window == 3 and param.on == false and param.mode == 'abc')\n"
                    "assert(param.ratio == 0.25)\n"
                    "return sieve.pattern{ name = 'p', mask = sieve.frame_window(param.window) }";
  const char *ov[] = {"window=2", "on=false", "mode=abc", "ratio=0.25", "window=3", NULL};
  sieve_pattern *sp = lt_load_ok(src, ov);
  const cg_pattern *p = lp_pattern_ir(sp);
  assert_int_equal(p->nparams, 4);
  assert_string_equal(p->params[0].name, "mode");
  assert_int_equal(p->params[0].kind, CG_PARAM_STRING);
  assert_string_equal(p->params[0].str, "abc");
  assert_string_equal(p->params[1].name, "on");
  assert_int_equal(p->params[1].kind, CG_PARAM_BOOL);
  assert_true(p->params[1].num == 0);
  assert_string_equal(p->params[2].name, "ratio");
  assert_true(p->params[2].num == 0.25);
  assert_string_equal(p->params[3].name, "window");
  assert_true(p->params[3].num == 3 && p->params[3].overridden);
  assert_true(lt_at(sp, VID(0, 0, 0, 0), VID(3, 0, 0, 0)));
  sieve_pattern_free(sp);
  sp = lt_load_ok(src, (const char *[]){"window=3", "on=0", "mode=abc", "ratio=.25", NULL});
  p = lp_pattern_ir(sp);
  assert_true(p->params[1].num == 0 && p->params[1].overridden);
  sieve_pattern_free(sp);
  /* Defaults when nothing is overridden. */
  sp = lt_load_ok("local param = sieve.params{ w = 2 }\n"
                  "return sieve.pattern{ name = 'p', mask = sieve.frame_window(param.w) }", NULL);
  p = lp_pattern_ir(sp);
  assert_true(p->params[0].num == 2 && !p->params[0].overridden);
  sieve_pattern_free(sp);
}

static void declarations(void **st) {
  sieve_pattern *sp = lt_load_ok(
      "return sieve.pattern{ name = 'd', block = {q = 64, k = 256},\n"
      "  geometry = {text = 226, text_pos = 'before'},\n"
      "  layout = sieve.layout.tile{2, 4, 4}, mask = sieve.dense(),\n"
      "  selection = sieve.search{recall = 0.8, topk = 4, steps = {20, 10, 10}, levels = {512, 128}} }",
      NULL);
  const cg_pattern *p = lp_pattern_ir(sp);
  assert_int_equal(p->block_q, 64);
  assert_int_equal(p->block_k, 256);
  assert_int_equal(p->text, 226);
  assert_int_equal(p->text_after, 0);
  assert_int_equal(p->classes[0].layout.kind, CG_LAYOUT_TILE);
  assert_int_equal(p->classes[0].layout.tile[2], 4);
  assert_int_equal(p->sel.kind, CG_SELECT_LSE_SEARCH);
  assert_true(p->sel.recall == 0.8);
  assert_int_equal(p->sel.topk, 4);
  assert_int_equal(p->sel.nsteps, 2);
  assert_int_equal(p->sel.steps[0], 10);
  assert_int_equal(p->sel.steps[1], 20);
  assert_int_equal(p->sel.nlevels, 2);
  assert_int_equal(p->sel.levels[0], 512);
  assert_string_equal(p->source, "t.lua");
  sieve_pattern_free(sp);
  sp = lt_load_ok("return sieve.pattern{ name = 'd', mask = sieve.dense(),\n"
                  "  selection = sieve.profile{samples = 32, steps = {0}} }",
                  NULL);
  p = lp_pattern_ir(sp);
  assert_int_equal(p->sel.kind, CG_SELECT_PROFILE);
  assert_int_equal(p->sel.samples, 32);
  assert_int_equal(p->block_q, 0);  /* left to the kernels */
  assert_int_equal(p->text, -1);
  assert_int_equal(p->classes[0].layout.kind, CG_LAYOUT_IDENTITY);
  sieve_pattern_free(sp);
}

/* sieve.profile's masks: what each class is profiled under, in class
** order whatever order the script names them in; they enter the IR (the
** profiling kernel computes them), and a name that is no class, or a class
** left out, is refused. */
static void profile_masks(void **st) {
  static const char *src =
      "local sel = sieve.profile{steps = {0}, masks = {b = sieve.frame_window(2), a = sieve.spatial()}}\n"
      "return sieve.pattern{ name = 'p', classes = {\n"
      "  {name = 'a', layout = sieve.layout.identity, mask = sieve.frame_window(1)},\n"
      "  {name = 'b', layout = sieve.layout.transpose, mask = sieve.temporal()}},\n"
      "  heads = {'a', 'b'}, selection = sel }";
  sieve_pattern *sp = lt_load_ok(src, NULL);
  const cg_pattern *p = lp_pattern_ir(sp);
  assert_non_null(p->sel.pmask);
  assert_true(p->sel.pmask[0] != p->classes[0].mask);
  assert_true(cg_profile_mask(p, 1) == p->sel.pmask[1]);
  assert_non_null(strstr(sieve_pattern_ir(sp), "profile1 = "));
  sieve_pattern *plain = lt_load_ok(
      "return sieve.pattern{ name = 'p', classes = {\n"
      "  {name = 'a', layout = sieve.layout.identity, mask = sieve.frame_window(1)},\n"
      "  {name = 'b', layout = sieve.layout.transpose, mask = sieve.temporal()}},\n"
      "  heads = {'a', 'b'}, selection = sieve.profile{steps = {0}} }", NULL);
  assert_null(lp_pattern_ir(plain)->sel.pmask);
  assert_true(cg_profile_mask(lp_pattern_ir(plain), 1) == lp_pattern_ir(plain)->classes[1].mask);
  assert_true(sieve_pattern_hash(plain) != sieve_pattern_hash(sp));
  sieve_pattern_free(plain);
  sieve_pattern_free(sp);
  lt_load_fails("return sieve.pattern{ name = 'p', mask = sieve.dense(),\n"
                "  selection = sieve.profile{steps = {0}, masks = {c = sieve.dense()}} }",
                NULL, SIEVE_ERR_SCRIPT, "'c', which is no class");
  lt_load_fails("return sieve.pattern{ name = 'p', classes = {\n"
                "  {name = 'a', layout = sieve.layout.identity, mask = sieve.dense()},\n"
                "  {name = 'b', layout = sieve.layout.identity, mask = sieve.spatial()}},\n"
                "  heads = {'a', 'b'}, selection = sieve.profile{steps = {0}, masks = {a = sieve.dense()}} }",
                NULL, SIEVE_ERR_SCRIPT, "no mask for class 'b'");
  lt_load_fails("return sieve.pattern{ name = 'p', mask = sieve.dense(),\n"
                "  selection = sieve.profile{steps = {0}, masks = {default = 3}} }",
                NULL, SIEVE_ERR_SCRIPT, "masks.default");
}

/* A pattern's own grid fills what the caller's shape leaves at 0; its text
** geometry wins over the shape's. */
static void geometry(void **st) {
  sieve_pattern *sp = lt_load_ok(
      "return sieve.pattern{ name = 'g', mask = sieve.dense(),\n"
      "  geometry = {frames = 5, height = 6, width = 7, text = 3, text_pos = 'after'} }", NULL);
  sieve_shape in = {.batch = 1, .heads = 2, .head_dim = 64, .frames = 9, .text = 50}, out;
  sieve_pattern_shape(sp, &in, &out);
  assert_int_equal(out.frames, 9);
  assert_int_equal(out.height, 6);
  assert_int_equal(out.width, 7);
  assert_int_equal(out.text, 3);
  assert_int_equal(out.text_after, 1);
  assert_int_equal(out.heads, 2);
  sieve_pattern_free(sp);
  lt_load_fails("return sieve.pattern{ name = 'g', mask = sieve.dense(), geometry = {frames = 0} }",
                NULL, SIEVE_ERR_SCRIPT, "geometry.frames");
  lt_load_fails("return sieve.pattern{ name = 'g', mask = sieve.dense(), geometry = {depth = 2} }",
                NULL, SIEVE_ERR_SCRIPT, "depth");
}

static void expressions_print(void **st) {
  sieve_pattern *p = lt_load_ok(
      "assert(tostring(sieve.q.t) == 'sieve.expr(int q.t)')\n"
      "assert(tostring(sieve.dense()) == 'sieve.expr(bool 1)')\n"
      "return sieve.pattern{ name = 'x', mask = sieve.dense() }",
      NULL);
  sieve_pattern_free(p);
}

/* Schedules: counts, fractions of a given total (floored), and errors. */
static void schedules(void **st) {
  sieve_pattern *p = lt_load_ok("return sieve.pattern{ name = 's', mask = sieve.spatial(), "
                                "schedule = {dense_steps = 0.1, steps = 50, dense_layers = 2} }", NULL);
  const cg_pattern *c = lp_pattern_ir(p);
  assert_int_equal(c->dense_steps, 5);
  assert_int_equal(c->dense_layers, 2);
  assert_true(cg_pattern_dense_at(c, 4, 9) && cg_pattern_dense_at(c, 30, 1) && !cg_pattern_dense_at(c, 5, 2));
  assert_non_null(strstr(sieve_pattern_ir(p), "schedule dense_steps=5 dense_layers=2"));
  sieve_pattern *q = lt_load_ok("return sieve.pattern{ name = 's', mask = sieve.spatial() }", NULL);
  assert_null(strstr(sieve_pattern_ir(q), "schedule"));  /* no schedule: the IR text is as before */
  assert_true(sieve_pattern_hash(p) != sieve_pattern_hash(q));
  sieve_pattern_free(p);
  sieve_pattern_free(q);
  p = lt_load_ok("return sieve.pattern{ name = 's', mask = sieve.spatial(), "
                 "schedule = {dense_layers = 0.03, layers = 60} }", NULL);
  assert_int_equal(lp_pattern_ir(p)->dense_layers, 1);
  sieve_pattern_free(p);
  lt_load_fails("return sieve.pattern{ name = 's', mask = sieve.dense(), schedule = {dense_steps = 0.1} }",
                NULL, SIEVE_ERR_SCRIPT, "give steps");
  lt_load_fails("return sieve.pattern{ name = 's', mask = sieve.dense(), schedule = {dense_steps = 1.5} }",
                NULL, SIEVE_ERR_SCRIPT, "fraction in [0, 1)");
  lt_load_fails("return sieve.pattern{ name = 's', mask = sieve.dense(), schedule = {warm = 3} }",
                NULL, SIEVE_ERR_SCRIPT, "unknown key 'warm'");
  lt_load_fails("return sieve.pattern{ name = 's', mask = sieve.dense(), schedule = {dense_steps = -1} }",
                NULL, SIEVE_ERR_SCRIPT, "at least 0");
}

/* Bad values of a method's params are refused, naming the param and line. */
static void expect_names_the_param(void **st) {
  const char *src = "local param = sieve.params{ budget = 0.25 }\n"
                    "sieve.expect('budget', param.budget > 0 and param.budget <= 1, 'must be in (0, 1]')\n"
                    "return sieve.pattern{ name = 'e', mask = sieve.dense() }";
  lt_load_fails(src, (const char *[]){"budget=0", NULL}, SIEVE_ERR_ARG, ":2: param 'budget' must be in (0, 1], got 0");
  sieve_pattern_free(lt_load_ok(src, (const char *[]){"budget=0.5", NULL}));
}

/* Masks sized by the shape fold to the shape's numbers (cg_mask_bound). */
static void shape_variables(void **st) {
  sieve_pattern *p = lt_mask("sieve.keys(function(k) return k.t:eq(sieve.shape.frames - 1) end)");
  cg_pattern *c = lp_pattern_ir(p);
  sieve_shape s = {1, 1, 64, 7, 2, 3, 0, 0};
  cg_ref m = cg_mask_bound(c->g, c->classes[0].mask, &s, -1);
  int64_t v[CG_NVARS] = {0};
  v[CG_V_KT] = 6;
  assert_int_equal(cg_eval1(c->g, m, v), 1);
  v[CG_V_KT] = 5;
  assert_int_equal(cg_eval1(c->g, m, v), 0);
  assert_false(cg_vars_used(c->g, m) & (1u << CG_V_FRAMES));
  sieve_pattern_free(p);
  p = lt_mask("(sieve.q.index - sieve.k.index):abs():le(sieve.isqrt(sieve.shape.width * 1000))");
  c = lp_pattern_ir(p);
  s.width = 10;  /* isqrt(10000) = 100 */
  m = cg_mask_bound(c->g, c->classes[0].mask, &s, -1);
  int64_t w[CG_NVARS] = {0};
  w[CG_V_KIDX] = 100;
  assert_int_equal(cg_eval1(c->g, m, w), 1);
  w[CG_V_KIDX] = 101;
  assert_int_equal(cg_eval1(c->g, m, w), 0);
  sieve_pattern_free(p);
}

int main(void) {
  const struct CMUnitTest t[] = {
    cmocka_unit_test(frame_and_token_windows),
    cmocka_unit_test(tile_window),
    cmocka_unit_test(anchors),
    cmocka_unit_test(rotating_anchors),
    cmocka_unit_test(spatial_temporal_causal_text),
    cmocka_unit_test(combinators),
    cmocka_unit_test(per_head),
    cmocka_unit_test(arithmetic_semantics),
    cmocka_unit_test(tracing_equals_primitive),
    cmocka_unit_test(union_order_does_not_matter),
    cmocka_unit_test(ir_is_stable),
    cmocka_unit_test(head_classes),
    cmocka_unit_test(params),
    cmocka_unit_test(declarations),
    cmocka_unit_test(profile_masks),
    cmocka_unit_test(geometry),
    cmocka_unit_test(expressions_print),
    cmocka_unit_test(schedules),
    cmocka_unit_test(expect_names_the_param),
    cmocka_unit_test(shape_variables),
  };
  return cmocka_run_group_tests(t, NULL, NULL);
}
