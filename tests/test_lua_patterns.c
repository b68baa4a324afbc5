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

/* LVSA on 33 frames, its examples' defaults: anchors {0} and every 4th
** frame, at every step; a window of 3 frames a side widened past anchors. */
static void lvsa_defaults(void **st) {
  sieve_pattern *p = load_file("lvsa", NULL);
  lt_tok q = VID(20, 0, 0, 0), k = VID(2, 0, 0, 0);  /* 18 frames apart */
  for (int step = 0; step < 4; step++) assert_false(lt_eval(p, 0, q, k, 0, step, 0));
  assert_true(lt_eval(p, 0, q, VID(28, 0, 0, 0), 0, 3, 0));
  /* [17, 23] holds anchor 20; 16 and 24 are anchors too, so the window
  ** grows to [15, 24] before it holds 7 other frames. */
  assert_true(lt_eval(p, 0, q, VID(15, 0, 0, 0), 0, 0, 0));
  assert_false(lt_eval(p, 0, q, VID(14, 0, 0, 0), 0, 0, 0));
  assert_false(lt_eval(p, 0, q, VID(25, 0, 0, 0), 0, 0, 0));
  /* An anchor frame's queries see the anchors and their window only. */
  assert_false(lt_eval(p, 0, VID(4, 0, 0, 0), VID(30, 0, 0, 0), 0, 0, 0));
  /* The window shifts at the edge to keep 7 frames: frame 0 sees 0 .. 6 and more. */
  assert_true(lt_eval(p, 0, VID(0, 0, 0, 0), VID(7, 0, 0, 0), 0, 1, 0));
  sieve_pattern_free(p);
  /* At the training length LVSA's auto spacing makes every frame an anchor. */
  p = load_file("lvsa", (const char *[]){"train_frames=33", NULL});
  assert_true(lt_eval(p, 0, q, VID(14, 0, 0, 0), 0, 0, 0));
  sieve_pattern_free(p);
}

/* LVSA's rotation, with train_frames 21 on 33 frames: interval 2 (auto
** spacing), and set_step(s) after step s, so steps 0 and 1 run offset 0
** and step 2 offset 1. Frame 1 is no anchor at offset 0 and lies outside
** frame 20's window [13, 26]. */
static void lvsa_rotates(void **st) {
  sieve_pattern *p = load_file("lvsa", (const char *[]){"train_frames=21", "rotate=true", NULL});
  lt_tok q = VID(20, 0, 0, 0), k = VID(1, 0, 0, 0);
  assert_false(lt_eval(p, 0, q, k, 0, 0, 0));
  assert_false(lt_eval(p, 0, q, k, 0, 1, 0));
  assert_true(lt_eval(p, 0, q, k, 0, 2, 0));
  assert_false(lt_eval(p, 0, q, k, 0, 3, 0));
  assert_true(lt_eval(p, 0, q, k, 0, 4, 5));  /* no layer term */
  sieve_pattern_free(p);
  /* sieve's own rotation over the fixed interval 4, step s on offset s % 4:
  ** frame 2 is an anchor at offset 2, and at offset 3 as (3 + 8 * 4) % 33. */
  p = load_file("lvsa", (const char *[]){"rotate_fixed=true", NULL});
  k = VID(2, 0, 0, 0);
  int seen = 0;
  for (int step = 0; step < 4; step++) seen += (int)lt_eval(p, 0, q, k, 0, step, 0);
  assert_int_equal(seen, 2);
  assert_true(lt_eval(p, 0, q, k, 0, 6, 0));
  assert_true(lt_eval(p, 0, q, k, 0, 6, 5));
  sieve_pattern_free(p);
  /* LVSA never rotates over a fixed interval: rotate needs train_frames. */
  char msg[1024];
  sieve_ctx *ctx;
  sieve_pattern *bad = NULL;
  char path[4200];
  snprintf(path, sizeof path, "%s/lvsa.lua", dir());
  assert_int_equal(sieve_open(&ctx), SIEVE_OK);
  assert_int_equal(sieve_pattern_load(ctx, path, (const char *[]){"rotate=true", NULL}, &bad), SIEVE_ERR_ARG);
  snprintf(msg, sizeof msg, "%s", sieve_errmsg(ctx));
  assert_non_null(strstr(msg, "param 'rotate' needs train_frames"));
  assert_null(bad);
  sieve_close(ctx);
}

/* install_lvsa_processors' shrink: window 14 and 4 leading frames cover 33
** frames, longer than 24: window 12 and 6 leading frames, so frame 0's
** queries no longer reach frame 31 (and 33 frames with one anchor
** interval: the anchors are frames 0 .. 5). */
static void lvsa_shrinks_its_window(void **st) {
  const char *base[] = {"window=14", "first=4", NULL, NULL};
  sieve_pattern *p = load_file("lvsa", base);
  assert_true(lt_eval(p, 0, VID(0, 0, 0, 0), VID(31, 0, 0, 0), 0, 0, 0));
  sieve_pattern_free(p);
  base[2] = "train_frames=24";
  p = load_file("lvsa", base);
  assert_false(lt_eval(p, 0, VID(0, 0, 0, 0), VID(31, 0, 0, 0), 0, 0, 0));
  assert_true(lt_eval(p, 0, VID(32, 0, 0, 0), VID(5, 0, 0, 0), 0, 0, 0));
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
  /* Budget 0.25 on 33 x 3600 tokens + 256 text: a band of 15,616 tokens. */
  lt_tok q = VID(4, 3, 3, 0);
  assert_true(lt_eval(sp, 0, q, VID(8, 3, 3, 0), 0, 0, 0));   /* spatial: 14,400 apart */
  assert_false(lt_eval(sp, 0, q, VID(9, 3, 3, 0), 0, 0, 0));  /* 18,000 */
  assert_true(lt_eval(sp, 1, q, VID(30, 3, 3, 0), 1, 0, 0));  /* temporal: 26 apart */
  assert_true(lt_eval(sp, 1, q, VID(4, 8, 76, 0), 1, 0, 0));  /* 473 positions: 15,609 */
  assert_false(lt_eval(sp, 1, q, VID(4, 8, 77, 0), 1, 0, 0)); /* 474: 15,642 */
  /* SVG profiles every sparse step: 64 rows from the first 10,000 tokens. */
  assert_int_equal(p->sel.kind, CG_SELECT_PROFILE);
  assert_int_equal(p->sel.samples, 64);
  assert_int_equal(p->sel.sample_range, 10000);
  assert_int_equal(p->sel.nsteps, 45);
  assert_int_equal(p->sel.steps[0], 5);
  assert_int_equal(p->sel.steps[44], 49);
  assert_int_equal(p->dense_steps, 5);   /* 10% of 50 */
  assert_int_equal(p->dense_layers, 1);  /* 3% of 60 */
  sieve_pattern_free(sp);
  sp = load_file("svg", (const char *[]){"model=wan", NULL});
  p = lp_pattern_ir(sp);
  assert_int_equal(p->dense_steps, 10);
  assert_true(lt_eval(sp, 1, q, VID(0, 0, 5, 0), 1, 0, 0));  /* the layout's first frame_size keys */
  sieve_pattern_free(sp);
  sp = load_file("svg", (const char *[]){"model=wan", "dense_steps=3", NULL});
  assert_int_equal(lp_pattern_ir(sp)->dense_steps, 3);
  assert_int_equal(lp_pattern_ir(sp)->sel.steps[0], 3);
  sieve_pattern_free(sp);
  /* CogVideoX: 32 rows from the whole sequence. */
  sp = load_file("svg", (const char *[]){"model=cogvideox", NULL});
  assert_int_equal(lp_pattern_ir(sp)->sel.samples, 32);
  assert_int_equal(lp_pattern_ir(sp)->sel.sample_range, 0);
  sieve_pattern_free(sp);
  sp = load_file("svg", (const char *[]){"profile=false", NULL});
  assert_int_equal(lp_pattern_ir(sp)->sel.kind, CG_SELECT_STATIC);
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
  /* Tiles (6, 8, 8), one tile each side, the centre clamped inside the
  ** 6 x 6 x 10 tiles: a corner query sees tiles 0 .. 2 on each axis. */
  assert_true(lt_at(sp, VID(0, 0, 0, 0), VID(17, 23, 23, 0)));
  assert_false(lt_at(sp, VID(0, 0, 0, 0), VID(18, 0, 0, 0)));
  assert_false(lt_at(sp, VID(0, 0, 0, 0), VID(0, 24, 0, 0)));
  assert_true(lt_at(sp, VID(32, 44, 79, 0), VID(18, 24, 56, 0)));  /* the far corner */
  assert_int_equal(p->dense_steps, 12);
  sieve_pattern_free(sp);
  sp = load_file("sta", (const char *[]){"clamp=false", NULL});
  assert_false(lt_at(sp, VID(0, 0, 0, 0), VID(12, 0, 0, 0)));  /* centred: tiles 0 .. 1 */
  sieve_pattern_free(sp);
  /* The mask search: a class per candidate kernel size, profiled in search
  ** mode at every sparse step, 3x3x3 the static split's class. */
  sp = load_file("sta", (const char *[]){"search=true", NULL});
  p = lp_pattern_ir(sp);
  static const char *names[] = {"3x1x10", "1x5x7", "3x3x3", "1x6x5", "1x3x10", "3x6x1"};
  assert_int_equal(p->nclasses, 6);
  for (int c = 0; c < 6; c++) {
    assert_string_equal(p->classes[c].name, names[c]);
    assert_int_equal(p->classes[c].layout.kind, CG_LAYOUT_TILE);
  }
  assert_int_equal(p->period, 1);
  assert_int_equal(p->head_class[0], 2);
  assert_int_equal(p->sel.kind, CG_SELECT_PROFILE);
  assert_int_equal(p->sel.mode, CG_PROFILE_SEARCH);
  assert_null(p->sel.file);
  assert_int_equal(p->sel.nsteps, 38);  /* 12 .. 49 */
  assert_int_equal(p->sel.steps[0], 12);
  assert_int_equal(p->sel.sample_range, 0);
  /* 1x6x5 (class 3): t half 0, y half 3 (kernel 6), x half 2; the corner
  ** query's centre clamps to (0, 2, 2) tiles (y: clamp(0, 3, 2), torch's order). */
  assert_true(lt_eval(sp, 3, VID(0, 0, 0, 0), VID(5, 44, 39, 0), 0, 20, 0));  /* y centre 2: all 6 tiles */
  assert_false(lt_eval(sp, 3, VID(0, 0, 0, 0), VID(6, 0, 0, 0), 0, 20, 0));
  assert_false(lt_eval(sp, 3, VID(0, 0, 0, 0), VID(0, 0, 5 * 8, 0), 0, 20, 0));
  sieve_pattern_free(sp);
  sp = load_file("sta", (const char *[]){"strategy=/x/y.txt", "candidates=2,2,2;1,1,1", NULL});
  p = lp_pattern_ir(sp);
  assert_int_equal(p->nclasses, 2);
  assert_string_equal(p->classes[0].name, "2x2x2");
  assert_int_equal(p->head_class[0], 0);  /* no 3x3x3: the first */
  assert_int_equal(p->sel.mode, CG_PROFILE_FILE);
  assert_string_equal(p->sel.file, "/x/y.txt");
  sieve_pattern_free(sp);
}

static void adaspa_search(void **st) {
  sieve_pattern *sp = load_file("adaspa", NULL);
  const cg_pattern *p = lp_pattern_ir(sp);
  assert_true(p->sel.sparsity == 0.8);
  assert_int_equal(p->block_q, 64);
  assert_int_equal(p->sel.nsteps, 2);
  assert_int_equal(p->sel.steps[0], 10);
  assert_int_equal(p->sel.steps[1], 30);
  assert_true(p->sel.tiers == 0.8);  /* AdaSpa §4.2-4.3: tiers, text sink, cached LSE */
  assert_int_equal(p->sel.text_sink, 1);
  assert_int_equal(p->sel.cache_lse, 1);
  sieve_pattern_free(sp);
  sp = load_file("adaspa", (const char *[]){"head_adaptive=false", "text_sink=false", "cache_lse=false", NULL});
  p = lp_pattern_ir(sp);
  assert_true(p->sel.tiers == 0 && !p->sel.text_sink && !p->sel.cache_lse);
  sieve_pattern_free(sp);
  sp = load_file("adaspa", (const char *[]){"select=topp", "block=128", "recall=0.95", "warmup=5", NULL});
  p = lp_pattern_ir(sp);
  assert_int_equal(p->sel.kind, CG_SELECT_LSE_SEARCH);
  assert_true(p->sel.recall == 0.95);
  assert_true(p->sel.tiers == 0);  /* tiers are top-k's */
  assert_int_equal(p->sel.steps[0], 5);
  assert_int_equal(p->sel.nlevels, 1);  /* one level unless coarse is set */
  assert_int_equal(p->sel.levels[0], 128);
  sieve_pattern_free(sp);
  sp = load_file("adaspa", (const char *[]){"select=topp", "block=128", "coarse=1024", NULL});
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
    cmocka_unit_test(lvsa_defaults),
    cmocka_unit_test(lvsa_rotates),
    cmocka_unit_test(lvsa_shrinks_its_window),
    cmocka_unit_test(svg_classes),
    cmocka_unit_test(sta_tiles),
    cmocka_unit_test(adaspa_search),
  };
  return cmocka_run_group_tests(t, NULL, NULL);
}
