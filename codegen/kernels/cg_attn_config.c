/*
** The attention kernel's config policy: which configs a spec may run
** (cg_attn_check) and which it gets by default, and what follows from a
** config: the table blocks the kernel reads, the head classes given
** bitmasks, shared memory. Builds no IR; the generator is cg_attn.c.
*/
#include "cg_attn_geom.h"

#include <stdlib.h>
#include <string.h>

#include "cg_attn_bits.h"
#include "cg_simplify.h"

#define SMEM_MAX (227 * 1024)
#define ACC_REGS_MAX 192   /* f32 accumulator registers a thread may hold */

/* A measurement switch set to 0: $NAME=0 turns a default off. */
static int env_off(const char *name) {
  const char *v = getenv(name);
  return v && !strcmp(v, "0");
}

int cg_attn_table_q(const cg_attn_spec *s) {
  int bq, bk;
  cg_attn_table_blocks(s, &bq, &bk);
  return bq;
}

static size_t smem_for(const cg_attn_spec *s, int pad) {
  int d = s->shape.head_dim;
  int ws = s->arch == CG_SM90A && ws_config(&s->cfg);
  size_t bars = ws ? WS_BAR_BYTES + (size_t)ws_p_bytes(&s->cfg, d) : 0;
  return (size_t)cg_st_bytes(s->cfg.block_m, d, pad) + (size_t)s->cfg.stages * 2 * (size_t)cg_st_bytes(s->cfg.block_n, d, pad) + bars;
}

/*
** The wide configs hold S, P and O of a step in all but a few registers of
** their budget (ws_live_max), which leaves no room for a predicate's row
** and column parts: at three consumer warpgroups ptxas spilled 112 bytes
** of a frame window's with 64 text tokens (none by bitmask), and at
** 192-key steps the register-lean layout that avoids it (CG_MASK_WARP)
** doubles the kernel's code (a frame window's compile, 160 to 380 ms). So
** there the cost's choice is bitmasks for every class that can have them.
*/
uint32_t cg_attn_bits(const cg_attn_spec *s) {
  const cg_pattern *p = s->pattern;
  int wide = s->cfg.warps == CG_WS3_WARPS || (ws_config(&s->cfg) && s->cfg.block_n == 192);
  if (s->arch != CG_SM90A || !wide || cg_bits_mode_env() != CG_BITS_COST)
    return cg_bits_env(s->pattern, &s->shape);
  /* Classes with a mask to apply: a constant one has no partial blocks. */
  uint32_t masked = 0;
  int64_t v;
  for (int i = 0; i < p->nclasses && i < 32; i++)
    if (!cg_is_const(p->g, p->classes[i].mask, &v)) masked |= 1u << i;
  return masked ? cg_bits_classes(s->pattern, &s->shape, CG_BITS_ALWAYS) & masked : 0;
}

/* The mask reads the step or layer: its tables are the GPU builder's,
** which makes no bitmasks. */
static int reads_step(const cg_pattern *p) {
  uint32_t vars = 0;
  for (int i = 0; i < p->nclasses; i++) vars |= cg_vars_used(p->g, p->classes[i].mask);
  return (vars & (1u << CG_V_STEP | 1u << CG_V_LAYER)) != 0;
}

/* An automatic layout counts as not the identity: configs are chosen
** before the shape's layout is (cg_layouts_resolve), and it may be a tile. */
static int identity_layouts(const cg_pattern *p) {
  for (int i = 0; i < p->nclasses; i++)
    if ((p->auto_layout && p->auto_layout[i]) || p->classes[i].layout.kind != CG_LAYOUT_IDENTITY) return 0;
  return 1;
}

/*
** Table blocks. A pattern's declared blocks are part of its method
** (AdaSpa's search blocks) or chosen for the kernels (dense's 384); one
** that declares none and whose tables a plan builds for itself (static
** selection, identity layouts) gets blocks of the kernel's tile: the
** smallest multiple of the CTA's rows (key step) that is at least 128
** tokens, the builder's default. Tiles of 64 and 128 keep the 128-token
** tables they always had; a 192-row or 192-key tile, which a 128-token
** block would split, gets tables of its own size. Other patterns keep 128.
*/
static int tile_tables(const cg_pattern *p) { return p->sel.kind == CG_SELECT_STATIC && identity_layouts(p); }
static int granule(int tile) { return tile > 0 ? (128 + tile - 1) / tile * tile : 128; }

void cg_attn_table_blocks(const cg_attn_spec *s, int *bq, int *bk) {
  const cg_pattern *p = s->pattern;
  int own = tile_tables(p), bm = s->cfg.block_m;
  *bq = p->block_q > 0 ? p->block_q : own ? granule(bm) : CG_TABLE_BLOCK;
  *bk = p->block_k > 0 ? p->block_k : own ? granule(s->cfg.block_n) : CG_TABLE_BLOCK;
  /* Smaller declared query blocks of a static pattern merged into the
  ** warp-specialised kernel's rows (cg_attn_table_q). */
  if (p->block_q > 0 && s->arch == CG_SM90A && ws_config(&s->cfg) && p->sel.kind == CG_SELECT_STATIC &&
      bm > *bq && bm % *bq == 0)
    *bq = bm;
}

/* Not at 192-key steps: six words a step ahead, beside S, P and O of 192
** keys, spilled (a frame window's 4 bytes at D = 128). */
int cg_attn_bits_ahead(const cg_attn_spec *s) {
  return cg_attn_uses_tma(s) && s->bits && s->cfg.block_n != 192 && !env_off("SIEVE_BITS_AHEAD");
}

/* With three consumer warpgroups the turn comes round later, and at D64
** S's product is too short to hide the rescale: after P V's wait measured
** 0.8-1.4% faster there in one comparison, the same within the noise in
** the next (dense cogvideox-1.5, H100, bench/RESULTS.md 2026-12-06). */
static int rescale_under_s_default(const cg_attn_config *c) { return mma_warps(c) / 4 < 3; }

int cg_attn_rescale_under_s(const cg_attn_spec *s) {
  if (!cg_attn_uses_tma(s)) return 0;
  const char *v = getenv("SIEVE_RESCALE_UNDER_S");
  if (v && (!strcmp(v, "0") || !strcmp(v, "1"))) return v[0] == '1';
  return rescale_under_s_default(&s->cfg);
}

int cg_attn_rescale_moved(const cg_attn_spec *s) {
  return cg_attn_uses_tma(s) && cg_attn_rescale_under_s(s) != rescale_under_s_default(&s->cfg);
}

int cg_attn_uses_tma(const cg_attn_spec *s) { return s->arch == CG_SM90A && ws_config(&s->cfg); }

int cg_attn_config_ws(const cg_attn_config *c) { return ws_config(c); }

int cg_attn_permutes(const cg_attn_spec *s) { return cg_attn_uses_tma(s) && !identity_layouts(s->pattern); }

/* $SIEVE_PERMUTE=0 keeps head classes in other layouts on the
** address-arithmetic kernels by default; anything else lets the default
** config give them the permute and the TMA kernel. */
static int permute_default(void) { return !env_off("SIEVE_PERMUTE"); }

/*
** Swizzled tiles cost no bytes, but a lane needs four addresses per tile;
** padded ones need one. At D = 128, where 128 O accumulators leave little
** room, a pattern that also carries index arithmetic (a layout other than
** the identity, or head classes to choose between) gets padded tiles, which
** keeps it clear of spills; plain ones keep swizzled tiles, 3% faster on an
** H100 (bench/RESULTS.md). D = 64 always swizzles: padding measured 13%
** slower there, and registers are plentiful.
*/
int cg_attn_smem_pad(const cg_attn_spec *s) {
  const cg_pattern *p = s->pattern;
  if (uses_wgmma(s)) return 0;  /* wgmma's panelled tiles: no padding */
  int busy = p->nclasses > 1;
  for (int i = 0; i < p->nclasses; i++)
    busy |= (p->auto_layout && p->auto_layout[i]) || p->classes[i].layout.kind != CG_LAYOUT_IDENTITY;
  return s->shape.head_dim == 128 && busy && smem_for(s, 16) <= SMEM_MAX ? 16 : 0;
}

size_t cg_attn_smem_bytes(const cg_attn_spec *s) { return smem_for(s, cg_attn_smem_pad(s)); }

static int one_of(int v, const int *set, int n) {
  for (int i = 0; i < n; i++)
    if (v == set[i]) return 1;
  return 0;
}

sieve_status cg_attn_check(const cg_attn_spec *s, cg_err *e) {
  static const int bms[] = {64, 128, 192}, bns[] = {32, 64, 128, 192}, ws[] = {4, 8, CG_WS_WARPS, CG_WS3_WARPS},
                   sts[] = {1, 2, 3, 4};
  const cg_attn_config *c = &s->cfg;
  if (!s->pattern) return cg_fail(e, SIEVE_ERR_ARG, "attention kernel: no pattern");
  if (cg_shape_check(&s->shape, e)) return e ? e->status : SIEVE_ERR_SHAPE;
  if (!one_of(c->block_m, bms, 3)) return cg_fail(e, SIEVE_ERR_ARG, "config: block_m must be 64, 128 or 192 (got %d)", c->block_m);
  if (!one_of(c->block_n, bns, 4)) return cg_fail(e, SIEVE_ERR_ARG, "config: block_n must be 32, 64, 128 or 192 (got %d)", c->block_n);
  if (!one_of(c->warps, ws, 4)) return cg_fail(e, SIEVE_ERR_ARG, "config: warps must be 4, 8, 12 or 16 (got %d)", c->warps);
  if (!one_of(c->stages, sts, 4)) return cg_fail(e, SIEVE_ERR_ARG, "config: stages must be 1, 2, 3 or 4 (got %d)", c->stages);
  if (c->sched < 0 || c->sched >= CG_SCHED_N)
    return cg_fail(e, SIEVE_ERR_ARG, "config: sched must be 0 (a CTA per tile), 1 (persistent, static) or 2 (persistent, atomic) (got %d)", c->sched);
  if (ws_config(c)) {
    int nwg = c->warps / 4 - 1;
    if (s->arch != CG_SM90A)
      return cg_fail(e, SIEVE_ERR_ARG, "config: %d warps (a TMA producer warpgroup and %d wgmma consumer%s) need sm_90a", c->warps,
                     nwg, nwg > 1 ? "s" : "");
    if (c->block_m != 64 * nwg || c->block_n < 64)
      return cg_fail(e, SIEVE_ERR_ARG, "config: %d warps need block_m %d and block_n 64, 128 or 192 (got %d, %d)",
                     c->warps, 64 * nwg, c->block_m, c->block_n);
    if (nwg == 1 && c->sched)
      return cg_fail(e, SIEVE_ERR_ARG, "config: the %s persistent grid needs 12 or 16 warps (8 warps over 64 rows run a CTA per tile)",
                     cg_sched_name(c->sched));
  } else {
    if (c->sched)
      return cg_fail(e, SIEVE_ERR_ARG, "config: the %s persistent grid needs the warp-specialised kernel (12 or 16 warps; got %d warps)",
                     cg_sched_name(c->sched), c->warps);
    if (c->block_m > 128 || c->block_n > 128)
      return cg_fail(e, SIEVE_ERR_ARG, "config: block_m or block_n 192 needs the warp-specialised kernel (12 or 16 warps; got %d warps)", c->warps);
    if (c->stages > 3)
      return cg_fail(e, SIEVE_ERR_ARG, "config: 4 stages need the warp-specialised kernel (12 or 16 warps; got %d warps)", c->warps);
  }
  /* Every config left is a warp per 16 or 32 rows (8 warps over 64 rows
  ** are the warp-specialised kernel's). */
  int rw = c->block_m / mma_warps(c), d = s->shape.head_dim;
  if (block_q(s) % c->block_m)
    return cg_fail(e, SIEVE_ERR_ARG, "config: block_m %d must divide the table's query block %d (the pattern's, or on the warp-specialised kernel a multiple of a static pattern's)",
                   c->block_m, block_q(s));
  if (block_k(s) % c->block_n)
    return cg_fail(e, SIEVE_ERR_ARG, "config: block_n %d must divide the pattern's key block %d", c->block_n, block_k(s));
  int acc = acc_regs(c, d);
  if (acc > ACC_REGS_MAX)
    return cg_fail(e, SIEVE_ERR_ARG, "config: %d rows per warp x (head_dim %d + block_n %d) needs %d accumulator registers per thread (at most %d); use more warps or a smaller block_n",
                   rw, d, c->block_n, acc, ACC_REGS_MAX);
  if (ws_config(c) && acc > ws_live_max(c, d))
    return cg_fail(e, SIEVE_ERR_ARG, "config: %d warps keep S and O of head_dim %d x block_n %d in %d registers a thread, more than the %d "
                   "their register budget leaves; use a smaller block_n or 12 warps",
                   c->warps, d, c->block_n, acc, ws_live_max(c, d));
  if (s->segs && (!ws_config(c) || !identity_layouts(s->pattern) || !cg_attn_mask_free(s->pattern) ||
                 s->pattern->sel.kind != CG_SELECT_STATIC))
    return cg_fail(e, SIEVE_ERR_ARG, "segments need the warp-specialised kernel and a pattern that allows every pair in "
                   "the identity layout (got %d warps, pattern %s)", c->warps, s->pattern->name ? s->pattern->name : "?");
  int64_t seq = sieve_shape_tokens(&s->shape);
  if (s->segs && (seq + 63) / 64 * seq > UINT32_MAX)
    return cg_fail(e, SIEVE_ERR_SHAPE, "segments of %lld tokens: %lld a head, more than 32-bit offsets hold", (long long)seq,
                   (long long)((seq + 63) / 64 * seq));
  if (cg_attn_smem_bytes(s) > SMEM_MAX)
    return cg_fail(e, SIEVE_ERR_ARG, "config: needs %zu bytes of shared memory (at most %d)", cg_attn_smem_bytes(s), SMEM_MAX);
  return SIEVE_OK;
}

/*
** Measured on an H100 (bench/RESULTS.md): 4 warps of 32 rows read K and V
** from shared memory half as often per flop as 16-row warps, which pays
** for reading Q from shared memory each step. At D = 128 a 32-key step
** keeps the 128 O accumulators clear of spills (64 keys was 3% faster on
** dense but spilled); at D = 64 64-key steps beat 32-key ones with Q in
** registers by a fifth. sm_90a takes 8 warps of 16 rows (wgmma); at D = 128
** 128-key steps (hunyuan-720p's frame window: 34.0 ms against 39.5 with
** 64-key steps), at D = 64 64-key steps (cogvideox-1.5 dense: 62.3 ms
** against 69.5 with 128-key steps). Patterns take the warp-specialised
** kernel, 128/128/12/2 (head classes in other layouts through the layout
** permute; SIEVE_PERMUTE=0 keeps them on 8 warps), and where the table blocks
** allow its wide configs, three consumer warpgroups, 192/128/16/2, beside
** FA3 (bench/RESULTS.md): at D = 64 on the H200 (2026-12-04; cogvideox-1.5:
** 46.98 ms against 55.47 for 128/128/12/2, FA3 46.41); at D = 128 on an
** H100 once the warpgroup index sat in uniform registers (2026-12-07:
** wan-14b-720p 0.98x FA3's speed against 0.93x for 128/192/12/2,
** hunyuan-720p 1.00x against 0.995x; causal and frame windows 1-3%
** faster). Before that 192-key steps, 128/192/12/2, won at D = 128 (H200,
** 2026-12-04: wan-1.3b-480p 9.98 ms against 10.26, FA3 10.17), and they
** stay where the key blocks take 192 keys but not 128.
** 64-token query blocks of static patterns merge three to a CTA of three
** consumer warpgroups, 192/64/16/2 (cg_attn_table_q; H200, hunyuan-720p,
** bitmasks: radial 36.2 ms and dilated 37.9 against 40.4 and 43.4 for two
** merged, 128/64/12/2, and 49.6 and 58.6 for the 4-warp kernel of 64 rows),
** or two, 128/64/12/2, where a class keeps its predicate. Those not
** merged (a search's blocks, whose rows' key blocks differ) take one
** consumer warpgroup, 64/64/8/2, two or three CTAs a multiprocessor
** (H100, AdaSpa's sparse steps against the 4-warp kernel: wan-1.3b-480p
** 2.63 ms against 2.82-2.86, hunyuan-720p about 1.09x faster,
** cogvideox-1.5 12.2-12.4 against 13.8 with three CTAs at D = 64, where
** two were 1.08x slower).
** The blocks allow the wide configs for dense (384-token blocks, no mask
** to compete for registers) and for every pattern whose tables follow the
** tile (cg_attn_table_blocks), masks included.
*/
/* Every class's mask is true everywhere: no partial blocks, so no mask
** code in the loop competes with the wide configs for registers. */
int cg_attn_mask_free(const cg_pattern *p) {
  int64_t v;
  for (int i = 0; i < p->nclasses; i++)
    if (!cg_is_const(p->g, p->classes[i].mask, &v) || !v) return 0;
  return 1;
}

int cg_attn_folds_dense(cg_pattern *p, const sieve_shape *shape) {
  if (env_off("SIEVE_FOLD") || p->sel.kind != CG_SELECT_STATIC || cg_attn_mask_free(p)) return 0;
  sieve_shape s;
  cg_shape_for(p, shape, &s);
  int64_t seq = sieve_shape_tokens(&s);
  cg_range r[CG_NVARS];
  cg_kernel_ranges(r, seq - 1, seq - 1, s.heads, s.text);
  const cg_layout id = {.kind = CG_LAYOUT_IDENTITY};
  for (int h = 0; h < p->period; h++) {
    int64_t t;
    cg_ref m = cg_mask_at_positions(p->g, p->classes[p->head_class[h]].mask, &id, &s, NULL);
    if (m == CG_NONE || (m = cg_simplify(p->g, m, r)) == CG_NONE || !cg_is_const(p->g, m, &t) || !t) return 0;
  }
  return 1;
}

/* Every class with partial blocks reads bitmasks: no predicate in the
** loop to crowd three consumer warpgroups' 160 registers (radial with its
** temporal class on predicates spills 24 bytes there at D = 128). */
static int bits_only(const cg_attn_spec *s) {
  uint32_t all = cg_bits_classes(s->pattern, &s->shape, CG_BITS_ALWAYS);
  return (cg_attn_bits(s) & all) == all;
}

/* $SIEVE_MERGE_ROWS=0 keeps 64-token query blocks on the 4-warp kernel
** (for measurement); anything else lets the default merge them. */
static int merge_default(const cg_pattern *p) {
  return p->sel.kind == CG_SELECT_STATIC && 128 % cg_pattern_block_q(p) == 0 && !env_off("SIEVE_MERGE_ROWS");
}

/* $SIEVE_WS1=0 keeps 64-token query blocks that are not merged on the
** 4-warp kernel (for measurement); anything else gives them one consumer
** warpgroup. */
static int ws1_default(void) { return !env_off("SIEVE_WS1"); }

/* $SIEVE_SCHED=0|1|2 picks the warp-specialised kernels' default schedule
** (CG_SCHED_*), for measurement. */
static int sched_default(void) {
  const char *v = getenv("SIEVE_SCHED");
  int n = v ? atoi(v) : CG_SCHED_GRID;
  return n >= 0 && n < CG_SCHED_N ? n : CG_SCHED_GRID;
}

cg_attn_config cg_attn_default_config(const cg_attn_spec *s) {
  cg_attn_config c = {128, s->shape.head_dim == 128 ? 32 : 64, 4, 2};
  const cg_pattern *p = s->pattern;
  /* Blocks left to the tile fit any config: 384 is a multiple of every tile. */
  int any = p && tile_tables(p);
  int bq = p && p->block_q > 0 ? p->block_q : any ? 384 : 128;
  int bk = p && p->block_k > 0 ? p->block_k : any ? 384 : 128;
  int ws = s->arch == CG_SM90A && p && (identity_layouts(p) || permute_default()) && bk % 64 == 0;
  if (s->arch == CG_SM90A) c = (cg_attn_config){128, s->shape.head_dim == 128 ? 128 : 64, 8, 2};
  if (bq % 128 && !(ws && merge_default(s->pattern))) {
    c.block_m = 64;
    if (s->arch == CG_SM90A) c.warps = ws && ws1_default() ? CG_WS1_WARPS : 4;
  } else if (ws) {
    c = (cg_attn_config){128, 128, CG_WS_WARPS, 2};
    /* Masks whose tables follow the step (lvsa's) keep 128/128: the wide
    ** configs take masks by bitmask (cg_attn_bits), which such tables do
    ** not have, and a predicate that large spills beside them. */
    int wide = cg_attn_mask_free(p) || (any && !reads_step(p));
    if (wide && bq % 192 == 0 && bk % 128 == 0)
      c = (cg_attn_config){192, 128, CG_WS3_WARPS, 2};
    else if (wide && s->shape.head_dim == 128 && bk % 192 == 0)
      c = (cg_attn_config){128, 192, CG_WS_WARPS, 2};
    if (bq % 128)
      c = bits_only(s) ? (cg_attn_config){192, 64, CG_WS3_WARPS, 2} : (cg_attn_config){128, 64, CG_WS_WARPS, 2};
  }
  while (c.block_n > (ws_config(&c) ? 64 : 32) && bk % c.block_n) c.block_n /= 2;
  if (s->arch == CG_SM90A && ws_config(&c) && c.warps != CG_WS1_WARPS) c.sched = sched_default();
  return c;
}
