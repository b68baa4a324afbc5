/*
** Packing per-row block lists into the attention kernel's tables: a scan
** of the row counts per table (row pointers and full counts), then a copy
** of every row into place. Shared by the table builder and AdaSpa's
** selection, which write the same rows and counts (cg_tablegen.h).
*/
#include "cg_tablegen.h"
#include "cg_tile_ext.h"

typedef struct pk {
  cg_em *em;
  cg_tk tk;
  int nq, nk;
  int64_t table_ints;
  int wpb;  /* with bitmasks: words per bitmask, entries two int32s; 0: one */
  int ntables;
} pk;

#define EM (k->em)

static LLVMValueRef ld(pk *k, LLVMValueRef base, LLVMValueRef i) {
  return cg_load(EM, EM->t_i32, cg_gep(EM, EM->t_i32, base, i));
}
static void st(pk *k, LLVMValueRef v, LLVMValueRef base, LLVMValueRef i) {
  cg_store(EM, v, cg_gep(EM, EM->t_i32, base, i));
}

/* Table t's slot in tabs. */
static LLVMValueRef slot(pk *k, LLVMValueRef tabs, LLVMValueRef t) {
  return cg_gep(EM, EM->t_i32, tabs, CG_MUL(EM, CG_ZEXT64(EM, t), cg_i64(EM, k->table_ints)));
}

/* A kernel of n pointer parameters and 32 * warps threads. */
static void begin(pk *k, const char *name, const char *const *pn, int n, int warps, LLVMValueRef *prm) {
  LLVMTypeRef ty[6] = {EM->t_gptr, EM->t_gptr, EM->t_gptr, EM->t_gptr, EM->t_gptr, EM->t_gptr};
  LLVMValueRef fn = cg_em_kernel(EM, name, ty, pn, n, 32 * warps, 0);
  for (int i = 0; i < n; i++) prm[i] = LLVMGetParam(fn, (unsigned)i);
  if (cg_tk_init(&k->tk, EM, CG_SM80, CG_BF16, 32 * warps)) EM->bad = 1;  /* err says why */
}

/* One warp per table: rowptr by a running scan, 32 rows at a time. */
static void scan_kernel(pk *k) {
  static const char *pn[2] = {"counts", "tabs"};
  LLVMValueRef prm[2];
  begin(k, "sieve_tbl_scan", pn, 2, 1, prm);
  LLVMValueRef t = cg_sreg_read(EM, CG_CTAID_X), lane = k->tk.lane;
  LLVMValueRef base = slot(k, prm[1], t);
  LLVMValueRef cnt = cg_gep(EM, EM->t_i32, prm[0], CG_MUL(EM, CG_ZEXT64(EM, t), cg_i64(EM, 2 * (int64_t)k->nq)));
  cg_reg carry = cg_reg_new(EM, EM->t_i32, cg_i32(EM, 0));
  cg_for loop;
  LLVMValueRef c = cg_for_begin(EM, &loop, cg_i32(EM, 0), cg_i32(EM, (k->nq + 31) / 32));
  LLVMValueRef r = CG_ADD(EM, CG_SHL(EM, c, cg_i32(EM, 5)), lane);
  LLVMValueRef in = CG_ICMP(EM, LLVMIntSLT, r, cg_i32(EM, k->nq));
  LLVMValueRef rc = CG_SEL(EM, in, r, cg_i32(EM, 0));
  LLVMValueRef nf = ld(k, cnt, CG_SHL(EM, rc, cg_i32(EM, 1)));
  LLVMValueRef np = ld(k, cnt, CG_ADD(EM, CG_SHL(EM, rc, cg_i32(EM, 1)), cg_i32(EM, 1)));
  LLVMValueRef incl = cg_warp_scan_i32(EM, CG_SEL(EM, in, CG_ADD(EM, nf, np), cg_i32(EM, 0)), lane);
  LLVMValueRef c0 = cg_rget(EM, carry);
  cg_if w;
  cg_if_begin(EM, &w, in);
  st(k, CG_ADD(EM, c0, incl), base, CG_ADD(EM, r, cg_i32(EM, 1)));
  st(k, nf, base, CG_ADD(EM, r, cg_i32(EM, k->nq + 1)));
  cg_if_end(EM, &w);
  cg_rset(EM, carry, CG_ADD(EM, c0, cg_shfl_idx_i32(EM, incl, cg_i32(EM, 31))));
  cg_for_end(EM, &loop);
  cg_if lead;
  cg_if_begin(EM, &lead, CG_ICMP(EM, LLVMIntEQ, lane, cg_i32(EM, 0)));
  st(k, cg_i32(EM, 0), base, cg_i32(EM, 0));
  cg_if_end(EM, &lead);
  LLVMBuildRetVoid(EM->b);
  cg_tk_dispose(&k->tk);
}

/* One warp per row: full blocks in order, then partial ones (stored from
** the back of the row); with bitmasks each entry takes its bitmask's
** offset beside it. */
static void fill_kernel(pk *k) {
  static const char *pn[6] = {"rows", "counts", "tabs", "pgbase", "slot_of", "uid"};
  LLVMValueRef prm[6];
  begin(k, "sieve_tbl_fill", pn, k->wpb ? 6 : 3, CG_TGEN_WARPS, prm);
  LLVMValueRef t = cg_sreg_read(EM, CG_CTAID_Y), lane = k->tk.lane;
  LLVMValueRef qb = CG_ADD(EM, CG_MUL(EM, cg_sreg_read(EM, CG_CTAID_X), cg_i32(EM, CG_TGEN_WARPS)), k->tk.warp);
  cg_if in;
  cg_if_begin(EM, &in, CG_ICMP(EM, LLVMIntSLT, qb, cg_i32(EM, k->nq)));
  LLVMValueRef row = CG_ADD(EM, CG_MUL(EM, t, cg_i32(EM, k->nq)), qb);
  LLVMValueRef src = cg_gep(EM, EM->t_i32, prm[0], CG_MUL(EM, CG_ZEXT64(EM, row), cg_i64(EM, k->nk)));
  LLVMValueRef cnt = cg_gep(EM, EM->t_i32, prm[1], CG_SHL(EM, CG_ZEXT64(EM, row), cg_i64(EM, 1)));
  LLVMValueRef nf = ld(k, cnt, cg_i32(EM, 0)), n = CG_ADD(EM, nf, ld(k, cnt, cg_i32(EM, 1)));
  LLVMValueRef base = slot(k, prm[2], t);
  LLVMValueRef first = ld(k, base, qb);
  LLVMValueRef idx = cg_gep(EM, EM->t_i32, base, CG_ADD(EM, k->wpb ? CG_SHL(EM, first, cg_i32(EM, 1)) : first,
                                                        cg_i32(EM, 2 * k->nq + 1)));
  LLVMValueRef pg = k->wpb ? ld(k, prm[3], row) : NULL;
  /* The table's bitmasks start past the last slot. */
  LLVMValueRef bits0 = k->wpb ? CG_MUL(EM, CG_SUB(EM, cg_i32(EM, k->ntables), t), cg_i32(EM, (int32_t)k->table_ints)) : NULL;
  cg_for loop;
  LLVMValueRef c = cg_for_begin(EM, &loop, cg_i32(EM, 0), CG_LSHR(EM, CG_ADD(EM, n, cg_i32(EM, 31)), cg_i32(EM, 5)));
  LLVMValueRef i = CG_ADD(EM, CG_SHL(EM, c, cg_i32(EM, 5)), lane);
  cg_if w;
  cg_if_begin(EM, &w, CG_ICMP(EM, LLVMIntSLT, i, n));
  LLVMValueRef from = CG_SEL(EM, CG_ICMP(EM, LLVMIntSLT, i, nf), i,
                             CG_SUB(EM, cg_i32(EM, k->nk - 1), CG_SUB(EM, i, nf)));
  if (!k->wpb) {
    st(k, ld(k, src, from), idx, i);
  } else {
    LLVMValueRef at = CG_SHL(EM, i, cg_i32(EM, 1));
    LLVMValueRef none = CG_OR(EM, CG_ICMP(EM, LLVMIntSLT, i, nf), CG_ICMP(EM, LLVMIntSLT, pg, cg_i32(EM, 0)));
    st(k, ld(k, src, from), idx, at);
    cg_reg off = cg_reg_new(EM, EM->t_i32, cg_i32(EM, -1));
    cg_if has;
    cg_if_begin(EM, &has, LLVMBuildNot(EM->b, none, ""));
    LLVMValueRef u = ld(k, prm[5], ld(k, prm[4], CG_ADD(EM, pg, CG_SUB(EM, i, nf))));
    cg_rset(EM, off, CG_ADD(EM, bits0, CG_MUL(EM, u, cg_i32(EM, k->wpb))));
    cg_if_end(EM, &has);
    st(k, cg_rget(EM, off), idx, CG_ADD(EM, at, cg_i32(EM, 1)));
  }
  cg_if_end(EM, &w);
  cg_for_end(EM, &loop);
  cg_if_end(EM, &in);
  LLVMBuildRetVoid(EM->b);
  cg_tk_dispose(&k->tk);
}

void cg_tpack_kernels(cg_em *em, cg_arch arch, int nq, int nk, int64_t table_ints) {
  cg_tpack_kernels_bits(em, arch, nq, nk, table_ints, 1, 0);
}

void cg_tpack_kernels_bits(cg_em *em, cg_arch arch, int nq, int nk, int64_t table_ints, int ntables, int wpb) {
  pk k = {.em = em, .nq = nq, .nk = nk, .table_ints = table_ints, .wpb = wpb, .ntables = ntables};
  (void)arch;  /* plain loads, stores and shuffles: the same on every target */
  scan_kernel(&k);
  fill_kernel(&k);
}
