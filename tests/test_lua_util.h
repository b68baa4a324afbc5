/*
** Helpers shared by the tests of the Lua pattern layer (tests/test_lua_*.c):
** loading a script from a string, and evaluating a traced mask at chosen
** token coordinates with cg_eval1.
*/
#ifndef TEST_LUA_UTIL_H
#define TEST_LUA_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lp.h"
#include "sieve.h"

typedef struct lt_tok {
  int t, y, x, text, idx;
} lt_tok;

#define VID(t_, y_, x_, idx_) ((lt_tok){(t_), (y_), (x_), 0, (idx_)})
#define TXT(idx_) ((lt_tok){-1, -1, -1, 1, (idx_)})

/* Loads $SIEVE_SOURCE_DIR/dir/name.lua (dir "patterns" or "bench/patterns")
** with overrides ov, or fails the test with the loader's message. */
static inline sieve_pattern *lt_load_source(sieve_ctx *ctx, const char *dir, const char *name,
                                            const char *const *ov) {
  char path[1024];
  const char *src = getenv("SIEVE_SOURCE_DIR");
  snprintf(path, sizeof path, "%s/%s/%s.lua", src ? src : ".", dir, name);
  sieve_pattern *sp = NULL;
  if (sieve_pattern_load(ctx, path, ov, &sp) != SIEVE_OK) fail_msg("%s: %s", path, sieve_errmsg(ctx));
  return sp;
}

/* Loads src as "t.lua"; on failure *msg gets the context's message. */
static inline sieve_status lt_load(const char *src, const char *const *ov, sieve_pattern **out,
                                   char *msg, size_t n) {
  sieve_ctx *ctx;
  assert_int_equal(sieve_open(&ctx), SIEVE_OK);
  sieve_status st = sieve_pattern_load_string(ctx, "t.lua", src, ov, out);
  if (msg) snprintf(msg, n, "%s", sieve_errmsg(ctx));
  sieve_close(ctx);
  return st;
}

static inline sieve_pattern *lt_load_ok(const char *src, const char *const *ov) {
  sieve_pattern *p = NULL;
  char msg[1024];
  sieve_status st = lt_load(src, ov, &p, msg, sizeof msg);
  if (st != SIEVE_OK) fail_msg("load failed (%d): %s", (int)st, msg);
  return p;
}

/* Loads and expects status st with `needle` in the message. */
static inline void lt_load_fails(const char *src, const char *const *ov, sieve_status st,
                                 const char *needle) {
  sieve_pattern *p = NULL;
  char msg[1024];
  sieve_status got = lt_load(src, ov, &p, msg, sizeof msg);
  assert_null(p);
  if (got != st || !strstr(msg, needle))
    fail_msg("expected status %d with \"%s\", got %d: %s", (int)st, needle, (int)got, msg);
}

/* A script whose only class has mask `expr`. */
static inline sieve_pattern *lt_mask(const char *expr) {
  char src[4096];
  snprintf(src, sizeof src, "return sieve.pattern{ name = \"m\", mask = %s }", expr);
  return lt_load_ok(src, NULL);
}

/* The shape a mask is evaluated on (its sieve.shape): HunyuanVideo 720p's
** grid, 33 x 45 x 80 tokens, and 256 text tokens, all valid. */
#define LT_FRAMES 33
#define LT_HEIGHT 45
#define LT_WIDTH 80
#define LT_TEXT 256

static inline int64_t lt_eval(const sieve_pattern *sp, int cls, lt_tok q, lt_tok k, int head,
                              int step, int layer) {
  const cg_pattern *p = lp_pattern_ir(sp);
  int64_t v[CG_NVARS] = {0};
  v[CG_V_FRAMES] = LT_FRAMES, v[CG_V_HEIGHT] = LT_HEIGHT, v[CG_V_WIDTH] = LT_WIDTH;
  v[CG_V_NTEXT] = v[CG_V_TLEN] = LT_TEXT;
  v[CG_V_QT] = q.t, v[CG_V_QY] = q.y, v[CG_V_QX] = q.x, v[CG_V_QTEXT] = q.text, v[CG_V_QIDX] = q.idx;
  v[CG_V_KT] = k.t, v[CG_V_KY] = k.y, v[CG_V_KX] = k.x, v[CG_V_KTEXT] = k.text, v[CG_V_KIDX] = k.idx;
  v[CG_V_HEAD] = head, v[CG_V_STEP] = step, v[CG_V_LAYER] = layer;
  return cg_eval1(p->g, p->classes[cls].mask, v);
}

static inline int64_t lt_at(const sieve_pattern *sp, lt_tok q, lt_tok k) {
  return lt_eval(sp, 0, q, k, 0, 0, 0);
}

#endif
