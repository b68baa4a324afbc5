/*
** Writes attention kernels (PTX), packed block tables and reference masks
** for bench/gpu_check_ptx.py, which runs them on a GPU machine with no LLVM
** or Lua: correctness against float64, and timing beside torch SDPA.
**
**   gpu_attn_export DIR [FILTER]      (e.g. .gpu/cases; FILTER: a name part)
**
** Patterns are built from the IR by hand (dense, a frame window with text
** rows and columns, SVG's two classes with a transposed layout), so the
** harness does not depend on the Lua layer.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cg_attn.h"
static cg_ref var(cg_pattern *p, cg_var v) { return cg_var_ref(p->g, v); }
static cg_ref bin(cg_pattern *p, cg_op op, cg_ref a, cg_ref b) { return cg_bin(p->g, op, a, b); }
static cg_ref num(cg_pattern *p, int64_t v) { return cg_const(p->g, v); }

/* kind 0: dense; 1: a +-w frame window with text rows and columns; 2: SVG's
** spatial class (model order) and temporal class (transposed layout). */
static cg_pattern *make_pattern(int kind, int w, int bq, int bk) {
  cg_pattern *p = cg_pattern_new();
  p->name = kind == 0 ? "dense" : kind == 1 ? "window" : "svg";
  p->block_q = bq; p->block_k = bk;
  p->nclasses = kind == 2 ? 2 : 1;
  p->classes = cg_alloc(p->arena, sizeof(cg_class) * 2);
  p->period = p->nclasses;
  p->head_class = cg_alloc(p->arena, sizeof(int) * 2);
  p->head_class[0] = 0; p->head_class[1] = 1;
  cg_ref text = bin(p, CG_OR, var(p, CG_V_QTEXT), var(p, CG_V_KTEXT));
  if (kind == 0) {
    p->classes[0] = (cg_class){"dense", {CG_LAYOUT_IDENTITY, {0, 0, 0}}, cg_bool(p->g, 1)};
  } else if (kind == 1) {
    cg_ref dt = cg_un(p->g, CG_ABS, bin(p, CG_SUB, var(p, CG_V_QT), var(p, CG_V_KT)));
    p->classes[0] = (cg_class){"window", {CG_LAYOUT_IDENTITY, {0, 0, 0}}, bin(p, CG_OR, text, bin(p, CG_LE, dt, num(p, w)))};
  } else {
    cg_ref same_t = bin(p, CG_EQ, var(p, CG_V_QT), var(p, CG_V_KT));
    cg_ref same_yx = bin(p, CG_AND, bin(p, CG_EQ, var(p, CG_V_QY), var(p, CG_V_KY)), bin(p, CG_EQ, var(p, CG_V_QX), var(p, CG_V_KX)));
    p->classes[0] = (cg_class){"spatial", {CG_LAYOUT_IDENTITY, {0, 0, 0}}, bin(p, CG_OR, text, same_t)};
    p->classes[1] = (cg_class){"temporal", {CG_LAYOUT_TRANSPOSE, {0, 0, 0}}, bin(p, CG_OR, text, same_yx)};
  }
  p->sel.kind = CG_SELECT_STATIC;
  cg_err e = {0};
  if (cg_pattern_finish(p, &e)) { fprintf(stderr, "finish: %s\n", e.msg); return NULL; }
  return p;
}

typedef struct kcase {
  const char *name;
  int kind, w;                 /* pattern */
  sieve_shape shape;
  cg_dtype dt;
  int bshd;
  cg_attn_config cfg;          /* zeros: default */
  int samples;                 /* 0: every query position */
  int perf;
} kcase;

static void wr(const char *path, const void *p, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(p, 1, n, f) != n) { fprintf(stderr, "write %s failed\n", path); exit(1); }
  fclose(f);
}

static int export_case(const kcase *kc, const char *dir) {
  cg_attn_spec s = {0};
  s.pattern = make_pattern(kc->kind, kc->w, 128, 128);
  s.shape = kc->shape;
  s.dtype = kc->dt;
  s.arch = CG_SM90A;
  s.cfg = kc->cfg.block_m ? kc->cfg : cg_attn_default_config(&s);
  char *ptx, *name; cg_err e = {0};
  struct timespec t0, t1; clock_gettime(CLOCK_MONOTONIC, &t0);
  if (cg_attn_build(&s, &ptx, &name, NULL, &e)) { fprintf(stderr, "%s: %s\n", kc->name, e.msg); return 1; }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  cg_tableset *ts;
  if (cg_tables_build(s.pattern, &s.shape, 0, 0, &ts, &e)) { fprintf(stderr, "%s tables: %s\n", kc->name, e.msg); return 1; }
  int32_t *tabs; size_t nt; int H = s.shape.heads;
  int32_t *hoff = malloc(sizeof(int32_t) * H);
  if (cg_tables_pack(ts, &tabs, &nt, hoff, &e)) { fprintf(stderr, "%s pack: %s\n", kc->name, e.msg); return 1; }
  char path[512];
  snprintf(path, sizeof path, "%s/%s.ptx", dir, kc->name); wr(path, ptx, strlen(ptx));
  snprintf(path, sizeof path, "%s/%s.tabs", dir, kc->name);
  FILE *f = fopen(path, "wb"); fwrite(hoff, 4, H, f); fwrite(tabs, 4, nt, f); fclose(f);
  int64_t S = ts->seq;
  int64_t allowed = 0, visited = 0;
  cg_ref mask, qidx, kidx;
  cg_kernel_exprs(s.pattern, &s.shape, &mask, &qidx, &kidx, &e);
  /* per distinct table: idx maps and sampled mask rows */
  int ns = kc->samples ? kc->samples : (int)S;
  int32_t *samp = malloc(sizeof(int32_t) * ns);
  srand(1234);
  for (int i = 0; i < ns; i++) samp[i] = kc->samples ? (int32_t)(i == 0 ? S - 1 : i == 1 ? 0 : rand() % S) : i;
  char heads[4096] = ""; size_t hl = 0;
  for (int h = 0; h < H; h++) {
    int t = ts->head_table[h];
    const cg_table *tb = &ts->tables[t];
    allowed += tb->allowed_pairs;
    for (int q = 0; q < tb->nq; q++) visited += (tb->full_ptr[q+1]-tb->full_ptr[q]) + (tb->part_ptr[q+1]-tb->part_ptr[q]);
    hl += snprintf(heads + hl, sizeof heads - hl, "%s%d", h ? "," : "", t);
    int first = 1;
    for (int g = 0; g < h; g++) if (ts->head_table[g] == t) first = 0;
    if (!first) continue;
    int64_t vars[CG_NVARS] = {0};
    vars[CG_V_HEAD] = h;
    int32_t *qi = malloc(4 * S), *ki = malloc(4 * S);
    for (int64_t p = 0; p < S; p++) {
      vars[CG_V_QPOS] = vars[CG_V_KPOS] = p;
      qi[p] = (int32_t)cg_eval1(s.pattern->g, qidx, vars);
      ki[p] = (int32_t)cg_eval1(s.pattern->g, kidx, vars);
    }
    uint8_t *m = malloc((size_t)ns * S);
    int dense = kc->kind == 0;
    for (int i = 0; i < ns && !dense; i++) {
      vars[CG_V_QPOS] = samp[i];
      for (int64_t p = 0; p < S; p++) {
        vars[CG_V_KPOS] = p;
        m[(size_t)i * S + p] = (uint8_t)cg_eval1(s.pattern->g, tb->pos_mask, vars);
      }
    }
    if (dense) memset(m, 1, (size_t)ns * S);
    snprintf(path, sizeof path, "%s/%s.t%d.bin", dir, kc->name, t);
    f = fopen(path, "wb"); fwrite(qi, 4, S, f); fwrite(ki, 4, S, f); fwrite(samp, 4, ns, f); fwrite(m, 1, (size_t)ns * S, f); fclose(f);
    free(qi); free(ki); free(m);
  }
  int bq = s.pattern->block_q, bk = s.pattern->block_k;
  snprintf(path, sizeof path, "%s/%s.json", dir, kc->name);
  f = fopen(path, "w");
  fprintf(f, "{\"name\":\"%s\",\"kernel\":\"%s\",\"B\":%d,\"H\":%d,\"S\":%lld,\"D\":%d,\"dtype\":\"%s\",\"bshd\":%d,"
             "\"smem\":%zu,\"threads\":%d,\"block_m\":%d,\"block_n\":%d,\"warps\":%d,\"stages\":%d,\"samples\":%d,\"heads\":[%s],"
             "\"density\":%.6f,\"visited\":%.6f,\"perf\":%d,\"compile_ms\":%.1f}\n",
          kc->name, name, s.shape.batch, H, (long long)S, s.shape.head_dim, kc->dt == CG_FP16 ? "fp16" : "bf16", kc->bshd,
          cg_attn_smem_bytes(&s), 32 * s.cfg.warps, s.cfg.block_m, s.cfg.block_n, s.cfg.warps, s.cfg.stages, ns, heads,
          (double)allowed / ((double)S * S * H), (double)visited * bq * bk / ((double)S * S * H), kc->perf,
          (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6);
  fclose(f);
  fprintf(stderr, "%-28s %s smem=%zu\n", kc->name, name, cg_attn_smem_bytes(&s));
  free(ptx); free(name); free(tabs); free(hoff); free(samp);
  cg_tables_free(ts);
  cg_pattern_free(s.pattern);
  return 0;
}

#define SH(b, h, d, t, y, x, txt) {b, h, d, t, y, x, txt, 0}
#define CFG(m, n, w, s) {m, n, w, s}
int main(int argc, char **argv) {
  const char *dir = argc > 1 ? argv[1] : ".gpu/cases";
  const kcase cases[] = {
    /* correctness: small, ragged (675 and 682 tokens), text, both layouts */
    {"dense_bf16_d128", 0, 0, SH(2, 2, 128, 5, 9, 15, 0), CG_BF16, 0, {0}, 0, 0},
    {"dense_fp16_d64", 0, 0, SH(2, 2, 64, 5, 9, 15, 0), CG_FP16, 0, {0}, 0, 0},
    {"dense_bf16_d128_bshd", 0, 0, SH(1, 3, 128, 5, 9, 15, 0), CG_BF16, 1, {0}, 0, 0},
    {"dense_bf16_d128_m128n64w8s2", 0, 0, SH(1, 2, 128, 5, 9, 15, 0), CG_BF16, 0, CFG(128, 64, 8, 2), 0, 0},
    {"dense_fp16_d128_m64n64w4s1", 0, 0, SH(1, 2, 128, 5, 9, 15, 0), CG_FP16, 0, CFG(64, 64, 4, 1), 0, 0},
    {"dense_bf16_d64_m128n128w8s3", 0, 0, SH(1, 2, 64, 5, 9, 15, 0), CG_BF16, 0, CFG(128, 128, 8, 3), 0, 0},
    {"dense_bf16_d128_m128n32w4s3", 0, 0, SH(1, 2, 128, 5, 9, 15, 0), CG_BF16, 0, CFG(128, 32, 4, 3), 0, 0},
    {"window1_bf16_d128_text", 1, 1, SH(2, 2, 128, 6, 8, 14, 7), CG_BF16, 0, {0}, 0, 0},
    {"window0_fp16_d64_text", 1, 0, SH(1, 2, 64, 6, 8, 14, 7), CG_FP16, 1, {0}, 0, 0},
    {"svg_bf16_d128", 2, 0, SH(1, 4, 128, 6, 8, 14, 7), CG_BF16, 0, {0}, 0, 0},
    {"svg_fp16_d64_m64n32w4s2", 2, 0, SH(1, 4, 64, 6, 8, 14, 0), CG_FP16, 1, CFG(64, 32, 4, 2), 0, 0},
    /* performance, sampled rows checked: wan-1.3b-480p, cogvideox-1.5, hunyuan-720p */
    {"perf_wan_dense", 0, 0, SH(1, 12, 128, 21, 30, 52, 0), CG_BF16, 0, {0}, 64, 1},
    {"perf_wan_dense_m128n64w4s2", 0, 0, SH(1, 12, 128, 21, 30, 52, 0), CG_BF16, 0, CFG(128, 64, 4, 2), 64, 1},
    {"perf_wan_win1", 1, 1, SH(1, 12, 128, 21, 30, 52, 0), CG_BF16, 0, {0}, 64, 1},
    {"perf_wan_win3", 1, 3, SH(1, 12, 128, 21, 30, 52, 0), CG_BF16, 0, {0}, 64, 1},
    {"perf_wan_svg", 2, 0, SH(1, 12, 128, 21, 30, 52, 0), CG_BF16, 0, {0}, 64, 1},
    {"perf_cog_dense", 0, 0, SH(1, 48, 64, 11, 48, 85, 226), CG_BF16, 0, {0}, 64, 1},
    {"perf_cog_win1", 1, 1, SH(1, 48, 64, 11, 48, 85, 226), CG_BF16, 0, {0}, 64, 1},
    {"perf_cog_win3", 1, 3, SH(1, 48, 64, 11, 48, 85, 226), CG_BF16, 0, {0}, 64, 1},
    {"perf_hun_dense", 0, 0, SH(1, 24, 128, 33, 45, 80, 0), CG_BF16, 0, {0}, 32, 1},
    {"perf_hun_win1", 1, 1, SH(1, 24, 128, 33, 45, 80, 0), CG_BF16, 0, {0}, 32, 1},
    {"perf_hun_win3", 1, 3, SH(1, 24, 128, 33, 45, 80, 0), CG_BF16, 0, {0}, 32, 1},
  };
  const char *only = argc > 2 ? argv[2] : NULL;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    if (!only || strstr(cases[i].name, only))
      if (export_case(&cases[i], dir)) return 1;
  return 0;
}
