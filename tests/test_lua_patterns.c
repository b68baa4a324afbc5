/*
** The shipped patterns (every .lua in patterns/): all load, are stable, and mean
** what their header comments say, text tokens included.
*/
#include <dirent.h>

#include "test_lua_util.h"

static const char *const shipped[] = {"dense", "causal", "token_window", "frame_window",
                                      "lvsa",  "svg",    "sta",          "adaspa"};
#define NSHIPPED (sizeof shipped / sizeof shipped[0])

static const char *dir(void) {
  static char d[4096];
  const char *src = getenv("SIEVE_SOURCE_DIR");
  snprintf(d, sizeof d, "%s/patterns", src ? src : ".");
  return d;
}

static sieve_pattern *load_file(const char *stem, const char *const *ov) {
  char path[4200], msg[1024];
  snprintf(path, sizeof path, "%s/%s.lua", dir(), stem);
  sieve_ctx *ctx;
  sieve_pattern *p = NULL;
  assert_int_equal(sieve_open(&ctx), SIEVE_OK);
  sieve_status st = sieve_pattern_load(ctx, path, ov, &p);
  snprintf(msg, sizeof msg, "%s", sieve_errmsg(ctx));
  sieve_close(ctx);
  if (st) fail_msg("%s: %s", path, msg);
  return p;
}

/* Every script in patterns/ loads, under its file name, the same each time. */
static void every_pattern_loads(void **st) {
  DIR *d = opendir(dir());
  assert_non_null(d);
  int n = 0;
  for (struct dirent *e; (e = readdir(d));) {
    size_t len = strlen(e->d_name);
    if (len < 5 || strcmp(e->d_name + len - 4, ".lua") != 0) continue;
    char stem[256];
    snprintf(stem, sizeof stem, "%.*s", (int)(len - 4), e->d_name);
    sieve_pattern *a = load_file(stem, NULL), *b = load_file(stem, NULL);
    assert_string_equal(sieve_pattern_name(a), stem);
    assert_string_equal(sieve_pattern_ir(a), sieve_pattern_ir(b));
    assert_int_equal(sieve_pattern_hash(a), sieve_pattern_hash(b));
    sieve_pattern_free(a);
    sieve_pattern_free(b);
    n++;
  }
  closedir(d);
  assert_true(n >= (int)NSHIPPED);
  for (size_t i = 0; i < NSHIPPED; i++) sieve_pattern_free(load_file(shipped[i], NULL));
}

/* Each pattern says in its header where it comes from. */
static void every_pattern_has_a_header(void **st) {
  for (size_t i = 0; i < NSHIPPED; i++) {
    char path[4200], head[4096] = {0};
    snprintf(path, sizeof path, "%s/%s.lua", dir(), shipped[i]);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(head, 1, sizeof head - 1, f);
    fclose(f);
    head[n] = 0;
    assert_true(strncmp(head, "-- ", 3) == 0);
    assert_non_null(strstr(head, "Params:"));
    if (!strcmp(shipped[i], "lvsa"))
      assert_non_null(strstr(head, "LVSA"));
    else if (strcmp(shipped[i], "dense") != 0 && strcmp(shipped[i], "token_window") != 0)
      assert_non_null(strstr(head, "arXiv"));
  }
}

/* Text tokens (CogVideoX puts 226 before the video) see and are seen by
** every token wherever the pattern keeps text dense. */
static void text_tokens_are_global(void **st) {
  static const char *const dense_text[] = {"dense", "causal", "frame_window", "lvsa", "sta",
                                           "token_window", "adaspa"};
  lt_tok far = VID(20, 40, 80, 100000);
  for (size_t i = 0; i < sizeof dense_text / sizeof dense_text[0]; i++) {
    sieve_pattern *p = load_file(dense_text[i], NULL);
    assert_true(lt_at(p, TXT(0), far));
    assert_true(lt_at(p, far, TXT(225)));
    assert_true(lt_at(p, TXT(3), TXT(200)));
    sieve_pattern_free(p);
  }
  sieve_pattern *p = load_file("svg", NULL);
  for (int c = 0; c < 2; c++) {
    assert_true(lt_eval(p, c, TXT(0), far, c, 0, 0));
    assert_true(lt_eval(p, c, far, TXT(9), c, 0, 0));
  }
  sieve_pattern_free(p);
  p = load_file("frame_window", (const char *[]){"text=false", NULL});
  assert_false(lt_at(p, TXT(0), far));
  sieve_pattern_free(p);
}

static void frame_window_and_causal(void **st) {
  sieve_pattern *p = load_file("frame_window", NULL);
  assert_true(lt_at(p, VID(5, 0, 0, 0), VID(6, 9, 9, 0)));
  assert_false(lt_at(p, VID(5, 0, 0, 0), VID(7, 0, 0, 0)));
  sieve_pattern_free(p);
  p = load_file("frame_window", (const char *[]){"window=3", NULL});
  assert_true(lt_at(p, VID(5, 0, 0, 0), VID(8, 0, 0, 0)));
  sieve_pattern_free(p);
  p = load_file("causal", NULL);
  assert_true(lt_at(p, VID(5, 0, 0, 0), VID(0, 9, 9, 0)));
  assert_false(lt_at(p, VID(5, 0, 0, 0), VID(6, 0, 0, 0)));
  sieve_pattern_free(p);
}

/* LVSA's anchors move with the step and the layer. */
static void lvsa_rotates(void **st) {
  sieve_pattern *p = load_file("lvsa", (const char *[]){"period=4", NULL});
  lt_tok q = VID(10, 0, 0, 0), k = VID(2, 0, 0, 0);  /* 8 frames apart */
  int seen = 0;
  for (int step = 0; step < 4; step++) seen += (int)lt_eval(p, 0, q, k, 0, step, 0);
  assert_int_equal(seen, 1);  /* frame 2 is an anchor at one step in four */
  assert_true(lt_eval(p, 0, q, k, 0, 2, 0));
  assert_false(lt_eval(p, 0, q, k, 0, 2, 1));  /* a layer later the grid has moved */
  assert_true(lt_eval(p, 0, q, VID(11, 0, 0, 0), 0, 0, 0));  /* the window */
  sieve_pattern_free(p);
}

static void svg_classes(void **st) {
  sieve_pattern *sp = load_file("svg", NULL);
  const cg_pattern *p = lp_pattern_ir(sp);
  assert_int_equal(p->nclasses, 2);
  assert_int_equal(p->period, 2);
  assert_string_equal(cg_pattern_class(p, 0)->name, "spatial");
  assert_int_equal(cg_pattern_class(p, 1)->layout.kind, CG_LAYOUT_TRANSPOSE);
  assert_int_equal(cg_pattern_class(p, 5)->layout.kind, CG_LAYOUT_TRANSPOSE);
  lt_tok q = VID(4, 3, 3, 0);
  assert_true(lt_eval(sp, 0, q, VID(4, 9, 9, 0), 0, 0, 0));   /* spatial: same frame */
  assert_false(lt_eval(sp, 0, q, VID(5, 3, 3, 0), 0, 0, 0));
  assert_true(lt_eval(sp, 1, q, VID(9, 3, 3, 0), 1, 0, 0));   /* temporal: same position */
  assert_false(lt_eval(sp, 1, q, VID(4, 3, 4, 0), 1, 0, 0));
  assert_true(lt_eval(sp, 0, q, VID(0, 7, 7, 0), 0, 0, 0));   /* spatial: first-frame sink */
  assert_false(lt_eval(sp, 1, q, VID(0, 7, 7, 0), 1, 0, 0));  /* temporal: no scattered sink */
  assert_int_equal(p->sel.kind, CG_SELECT_STATIC);
  sieve_pattern_free(sp);
  sp = load_file("svg", (const char *[]){"profile=true", "samples=16", NULL});
  assert_int_equal(lp_pattern_ir(sp)->sel.kind, CG_SELECT_PROFILE);
  assert_int_equal(lp_pattern_ir(sp)->sel.samples, 16);
  sieve_pattern_free(sp);
}

static void sta_tiles(void **st) {
  sieve_pattern *sp = load_file("sta", NULL);
  const cg_pattern *p = lp_pattern_ir(sp);
  assert_int_equal(p->classes[0].layout.kind, CG_LAYOUT_TILE);
  assert_int_equal(p->classes[0].layout.tile[0], 6);
  assert_int_equal(p->classes[0].layout.tile[1], 8);
  /* Tiles (6, 8, 8), one tile each side: t 0..5 is tile 0, 12..17 tile 2. */
  assert_true(lt_at(sp, VID(0, 0, 0, 0), VID(11, 15, 15, 0)));
  assert_false(lt_at(sp, VID(0, 0, 0, 0), VID(12, 0, 0, 0)));
  assert_false(lt_at(sp, VID(0, 0, 0, 0), VID(0, 16, 0, 0)));
  sieve_pattern_free(sp);
}

static void adaspa_search(void **st) {
  sieve_pattern *sp = load_file("adaspa", (const char *[]){"recall=0.95", "warmup=5", NULL});
  const cg_pattern *p = lp_pattern_ir(sp);
  assert_int_equal(p->sel.kind, CG_SELECT_LSE_SEARCH);
  assert_true(p->sel.recall == 0.95);
  assert_int_equal(p->sel.steps[0], 5);
  assert_int_equal(p->sel.nlevels, 1);  /* one level unless coarse is set */
  assert_int_equal(p->sel.levels[0], 128);
  sieve_pattern_free(sp);
  sp = load_file("adaspa", (const char *[]){"coarse=1024", NULL});
  p = lp_pattern_ir(sp);
  assert_int_equal(p->sel.nlevels, 2);
  assert_int_equal(p->sel.levels[0], 1024);
  assert_int_equal(p->sel.levels[1], 128);
  sieve_pattern_free(sp);
}

int main(void) {
  const struct CMUnitTest t[] = {
    cmocka_unit_test(every_pattern_loads),
    cmocka_unit_test(every_pattern_has_a_header),
    cmocka_unit_test(text_tokens_are_global),
    cmocka_unit_test(frame_window_and_causal),
    cmocka_unit_test(lvsa_rotates),
    cmocka_unit_test(svg_classes),
    cmocka_unit_test(sta_tiles),
    cmocka_unit_test(adaspa_search),
  };
  return cmocka_run_group_tests(t, NULL, NULL);
}
