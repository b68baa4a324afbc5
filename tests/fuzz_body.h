/*
** What the fuzz target does with one input, shared with test_fuzz_body.c
** (which runs it on generated inputs under ctest, without libFuzzer).
**
** An input whose first byte is 0xF0 is a choice sequence for the script
** generator (fuzz_gen.h); any other input is a script, followed after a
** NUL by NUL-separated "name=value" overrides. Then:
**   - the loader's promises: a failed script has a message that starts
**     with its file and a line, a loaded pattern's hash is its IR's;
**   - block tables for a small ragged shape with text (2x4x8 + 5 tokens,
**     3 heads, step 3, layer 1): built, or refused with a message; on
**     identity-layout heads, sampled token pairs of full blocks satisfy the
**     mask and those of unlisted blocks do not (cg_eval1); and the
**     builder's fast paths give the plain build's lists and bitmasks;
**   - the kernels' integer semantics: each class mask is lowered over the
**     shape's coordinate ranges and, at sampled token pairs, the lowered
**     code (folded on constants) must equal cg_eval1, or be refused;
**   - kernel generation (cg_attn_build, sm_80 and sm_90a by turns) for IR
**     not generated before, of graphs up to FZ_CODEGEN_NODES nodes, within
**     a time budget: a share of the run's time, so the fuzzer still runs
**     many inputs a second.
** Any broken promise aborts.
*/
#ifndef FUZZ_BODY_H
#define FUZZ_BODY_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cg_attn.h"
#include "cg_blocks.h"
#include "cg_lower.h"
#include "fuzz_gen.h"
#include "lp.h"
#include "sieve.h"

typedef struct fz_opts {
  double codegen_share;  /* of the wall time since the first input; 0: never generate kernels */
  int verbose;
} fz_opts;

static double fz_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void fz_fail(const char *what, const char *detail) {
  fprintf(stderr, "fuzz: %s: %s\n", what, detail ? detail : "");
  abort();
}

/* "name:line: ..." (line: a digit follows), or just "name: ..." when
** line may be 0 (a malformed override has no line to name). */
static int fz_positioned(const char *msg, const char *name, int line) {
  size_t n = strlen(name);
  if (strncmp(msg, name, n) != 0 || msg[n] != ':') return 0;
  return !line || (msg[n + 1] >= '1' && msg[n + 1] <= '9');
}

static uint64_t fz_fnv1a(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

static uint64_t fz_rand(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

/* Model-order token i of shape s: its coordinates as the IR's vars. */
static void fz_token(const sieve_shape *s, int64_t i, int q_side, int64_t *v) {
  int64_t hw = (int64_t)s->height * s->width, video = s->frames * hw;
  int64_t vi = s->text_after ? i : i - s->text;
  int text = vi < 0 || vi >= video;
  int64_t *t = v + (q_side ? CG_V_QT : CG_V_KT);
  t[0] = text ? -1 : vi / hw;                 /* t */
  t[1] = text ? -1 : vi / s->width % s->height; /* y */
  t[2] = text ? -1 : vi % s->width;           /* x */
  t[3] = text;                                /* text */
  t[4] = i;                                   /* idx */
}

/* The shape's grid, and all of its text valid (as the tables assume). */
static void fz_shape_vars(const sieve_shape *s, int64_t *v) {
  v[CG_V_FRAMES] = s->frames;
  v[CG_V_HEIGHT] = s->height;
  v[CG_V_WIDTH] = s->width;
  v[CG_V_NTEXT] = s->text;
  v[CG_V_TLEN] = s->text;
}

static void fz_tables(sieve_ctx *ctx, sieve_pattern *sp, const sieve_shape *s, uint64_t *rng) {
  sieve_tables *t = NULL;
  sieve_status st = sieve_tables_build(ctx, sp, s, 3, 1, &t);
  if (st) {
    if (!*sieve_errmsg(ctx)) fz_fail("tables refused without a message", NULL);
    return;
  }
  cg_pattern *p = lp_pattern_ir(sp);
  sieve_tables_info info;
  sieve_tables_info_get(t, &info);
  int64_t S = sieve_shape_tokens(s);
  for (int h = 0; h < s->heads; h++) {
    sieve_table_view v;
    if (sieve_tables_view(t, sieve_tables_head_table(t, h), &v)) fz_fail("no table view", NULL);
    if (strcmp(v.layout, "identity")) continue;
    cg_ref mask = cg_pattern_class(p, h)->mask;
    for (int qb = 0; qb < v.q_blocks; qb++) {
      for (int kb = 0; kb < info.k_blocks; kb++) {
        int full = 0, part = 0;
        for (int32_t j = v.full_ptr[qb]; j < v.full_ptr[qb + 1]; j++) full |= v.full_idx[j] == kb;
        for (int32_t j = v.part_ptr[qb]; j < v.part_ptr[qb + 1]; j++) part |= v.part_idx[j] == kb;
        if (full && part) fz_fail("a block is both full and partial", NULL);
        if (part) continue;
        for (int k = 0; k < 3; k++) {
          int64_t qi = (int64_t)qb * info.block_q + (int64_t)(fz_rand(rng) % (uint64_t)info.block_q);
          int64_t ki = (int64_t)kb * info.block_k + (int64_t)(fz_rand(rng) % (uint64_t)info.block_k);
          if (qi >= S || ki >= S) continue;
          int64_t vars[CG_NVARS] = {0};
          fz_token(s, qi, 1, vars);
          fz_token(s, ki, 0, vars);
          fz_shape_vars(s, vars);
          vars[CG_V_QPOS] = qi;
          vars[CG_V_KPOS] = ki;
          vars[CG_V_HEAD] = h;
          vars[CG_V_STEP] = 3;
          vars[CG_V_LAYER] = 1;
          if ((cg_eval1(p->g, mask, vars) != 0) != full) {
            char d[256];
            snprintf(d, sizeof d, "%s, head %d, tokens %lld, %lld: mask %d in a %s block", sieve_pattern_name(sp), h,
                     (long long)qi, (long long)ki, !full, full ? "full" : "empty");
            fz_fail("tables disagree with the mask", d);
          }
        }
      }
    }
  }
  sieve_tables_free(t);
}

/* The builder's fast paths (the block-pair memo, rows reused under
** translation) against the plain build, bitmasks included, at 16 x 32
** blocks over a larger grid than fz_tables', so that most rows have an
** earlier row to reuse and most pairs are worth a memo entry. */
static void fz_fast_paths(sieve_pattern *sp) {
  cg_pattern *p = lp_pattern_ir(sp), *v = NULL;
  sieve_shape in = {1, 3, 64, 4, 8, 12, 5, 0}, s;
  sieve_pattern_shape(sp, &in, &s);
  if (sieve_shape_check(NULL, &s) || sieve_shape_tokens(&s) > 4096) return;
  cg_err e = {0};
  int autos = 0;
  for (int i = 0; p->auto_layout && i < p->nclasses; i++) autos |= p->auto_layout[i];
  /* Blocks are a granularity of the tables; auto layouts choose per block
  ** size, so those keep the script's. */
  if (!autos && !(v = cg_pattern_with_blocks(p, 16, 32, &e))) return;  /* blocks the selection refuses */
  cg_pattern *q = v ? v : p;
  cg_tableset *a = NULL, *b = NULL;
  uint32_t bits = cg_bits_classes(q, &s, CG_BITS_ALWAYS);
  if (!cg_tables_build_bits(q, &s, 3, 1, 0, bits, &a, &e)) {
    if (cg_tables_build_bits(q, &s, 3, 1, CG_TABLES_NO_MEMO | CG_TABLES_NO_REUSE, bits, &b, &e))
      fz_fail("the plain build refused what the fast one built", e.msg);
    char why[256];
    if (cg_tables_differ(a, b, why, sizeof why)) fz_fail("the fast and the plain tables differ", why);
  }
  cg_tables_free(a);
  cg_tables_free(b);
  cg_pattern_view_free(v);
}

/* The lowered mask, folded on constant token pairs, against cg_eval1. */
static void fz_lowering(cg_pattern *p, const sieve_shape *s, uint64_t *rng) {
  int64_t S = sieve_shape_tokens(s);
  cg_range r[CG_NVARS];
  for (int i = 0; i < CG_NVARS; i++) r[i] = cg_range_none();
  for (int q = 0; q < 2; q++) {
    cg_range *c = r + (q ? CG_V_QT : CG_V_KT);
    c[0] = (cg_range){-1, s->frames - 1};
    c[1] = (cg_range){-1, s->height - 1};
    c[2] = (cg_range){-1, s->width - 1};
    c[3] = (cg_range){0, 1};
    c[4] = (cg_range){0, S - 1};
  }
  r[CG_V_QPOS] = r[CG_V_KPOS] = (cg_range){0, S - 1};
  r[CG_V_HEAD] = (cg_range){0, s->heads - 1};
  r[CG_V_STEP] = r[CG_V_LAYER] = (cg_range){0, 1000};
  r[CG_V_TLEN] = (cg_range){0, s->text};
  /* The shape's grid is constant in a kernel (cg_shape_vars). */
  cg_ref map[CG_NVARS];
  for (int i = 0; i < CG_NVARS; i++) map[i] = CG_NONE;
  cg_shape_vars(p->g, s, map);
  cg_em em;
  if (cg_em_init(&em, "fz")) return;
  LLVMTypeRef none = NULL;
  cg_em_kernel(&em, "k", &none, NULL, 0, 32, 0);
  for (int c = 0; c < p->nclasses; c++) {
    cg_err e = {0};
    cg_ref mask = cg_subst(p->g, p->classes[c].mask, map);
    if (mask == CG_NONE) fz_fail("out of memory", NULL);
    cg_lower *l = cg_lower_new(p->g, mask, r, &e);
    if (!l) {
      if (e.status != SIEVE_ERR_UNSUPPORTED) fz_fail("lowering failed", e.msg);
      continue;
    }
    for (int k = 0; k < 4; k++) {
      int64_t vars[CG_NVARS] = {0};
      fz_token(s, (int64_t)(fz_rand(rng) % (uint64_t)S), 1, vars);
      fz_token(s, (int64_t)(fz_rand(rng) % (uint64_t)S), 0, vars);
      vars[CG_V_HEAD] = (int64_t)(fz_rand(rng) % (uint64_t)s->heads);
      vars[CG_V_STEP] = (int64_t)(fz_rand(rng) % 1001);
      vars[CG_V_LAYER] = (int64_t)(fz_rand(rng) % 1001);
      vars[CG_V_QPOS] = vars[CG_V_QIDX];
      vars[CG_V_KPOS] = vars[CG_V_KIDX];
      fz_shape_vars(s, vars);
      vars[CG_V_TLEN] = (int64_t)(fz_rand(rng) % (uint64_t)(s->text + 1));
      LLVMValueRef v[CG_NVARS];
      for (int i = 0; i < CG_NVARS; i++) v[i] = cg_i32(&em, vars[i]);
      LLVMValueRef out = cg_lower_emit(l, &em, v);
      if (!LLVMIsAConstantInt(out)) fz_fail("lowering did not fold on constants", NULL);
      int64_t got = (int64_t)(LLVMConstIntGetZExtValue(out) & 1), want = cg_eval1(p->g, p->classes[c].mask, vars) != 0;
      if (got != want) fz_fail("the lowered mask disagrees with cg_eval1", p->ir_text);
    }
    cg_lower_free(l);
  }
  cg_em_dispose(&em);
}

/*
** Kernels for IR not generated before, while generation stays within its
** share of the time, for graphs of at most FZ_CODEGEN_NODES nodes: kernel
** generation takes about 16 ms a mask node (a union of 2000 comparisons,
** 8000 nodes, takes minutes), which would make the larger inputs time out
** instead of testing anything new.
*/
#define FZ_CODEGEN_NODES 256

static void fz_codegen(cg_pattern *p, const sieve_shape *s, const fz_opts *o, int nodes) {
  static double t0, spent;
  static uint64_t seen[4096];
  static int turn;
  double now = fz_now();
  if (!t0) t0 = now;
  if (o->codegen_share <= 0 || nodes > FZ_CODEGEN_NODES || spent > o->codegen_share * (now - t0) + 1.0) return;
  uint64_t h = p->ir_hash | 1;
  uint64_t *slot = &seen[h % 4096];
  if (*slot == h) return;
  *slot = h;
  cg_attn_spec sp = {.pattern = p, .shape = *s, .dtype = CG_BF16, .arch = turn++ % 2 ? CG_SM90A : CG_SM80};
  cg_shape_for(p, s, &sp.shape);
  sp.cfg = cg_attn_default_config(&sp);
  char *ptx = NULL, *name = NULL;
  cg_err e = {0};
  sieve_status st = cg_attn_build(&sp, &ptx, &name, NULL, &e);
  if (st && (!e.msg[0] || st == SIEVE_ERR_CODEGEN)) fz_fail("kernel generation failed", e.msg);
  if (!st && (!ptx || !strstr(ptx, ".entry"))) fz_fail("kernel generation gave no kernel", NULL);
  free(ptx);
  free(name);
  spent += fz_now() - now;
}

static void fz_pattern(sieve_ctx *ctx, sieve_pattern *sp, const fz_opts *o, uint64_t seed) {
  const char *ir = sieve_pattern_ir(sp);
  if (!ir || !sieve_pattern_name(sp) || sieve_pattern_hash(sp) != fz_fnv1a(ir)) fz_fail("IR hash", ir);
  sieve_shape in = {1, 3, 64, 2, 4, 8, 5, 0}, s;
  sieve_pattern_shape(sp, &in, &s);
  if (sieve_shape_check(NULL, &s)) return;  /* the script's own geometry may be too large */
  if (sieve_shape_tokens(&s) > 4096) return;
  uint64_t rng = seed | 1;
  int nodes = cg_graph_size(lp_pattern_ir(sp)->g);
  fz_tables(ctx, sp, &s, &rng);
  fz_fast_paths(sp);
  fz_lowering(lp_pattern_ir(sp), &s, &rng);
  fz_codegen(lp_pattern_ir(sp), &s, o, nodes);
}

static int fz_one(const uint8_t *data, size_t size, const fz_opts *o) {
  static char src[1 << 16];
  const char *ov[64];
  char *buf = NULL;
  const char *text;
  fz_gen g;
  if (size && data[0] == 0xF0) {
    fz_script(data + 1, size - 1, src, sizeof src, ov, &g);
    text = src;
  } else {
    /* Script, NUL, overrides separated by NULs. */
    buf = malloc(size + 2);
    if (!buf) return 0;
    memcpy(buf, data, size);
    buf[size] = buf[size + 1] = 0;
    text = buf;
    size_t at = strlen(buf) + 1;
    int n = 0;
    while (at < size && n < 63) {
      ov[n++] = buf + at;
      at += strlen(buf + at) + 1;
    }
    ov[n] = NULL;
  }
  if (o->verbose) fprintf(stderr, "---\n%s\n", text);
  sieve_ctx *ctx;
  if (sieve_open(&ctx) != SIEVE_OK) {
    free(buf);
    return 0;
  }
  sieve_pattern *p = NULL;
  sieve_status st = sieve_pattern_load_string(ctx, "fuzz.lua", text, ov, &p);
  if (st == SIEVE_OK) {
    fz_pattern(ctx, p, o, fz_fnv1a(text));
  } else if (p || ((st == SIEVE_ERR_SCRIPT || st == SIEVE_ERR_LIMIT || st == SIEVE_ERR_ARG) &&
                   !fz_positioned(sieve_errmsg(ctx), "fuzz.lua", st != SIEVE_ERR_ARG))) {
    fz_fail("load failed without file:line", sieve_errmsg(ctx));
  } else if (strchr(sieve_errmsg(ctx), '\n') || strchr(sieve_errmsg(ctx), 27)) {
    fz_fail("message is not one safe line", sieve_errmsg(ctx));
  }
  sieve_pattern_free(p);
  sieve_close(ctx);
  free(buf);
  return 0;
}

#endif
