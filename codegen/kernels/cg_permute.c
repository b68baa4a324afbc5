/*
** The layout permute kernel (cg_permute.h): a memory-bound gather of rows
** into layout order, 16 bytes a thread and tensor. Consecutive threads copy
** consecutive pieces of a row and consecutive rows of the output, so the
** stores are fully coalesced and each source row is read whole by D / 8
** neighbouring threads.
*/
#include "cg_permute.h"

#include <stdlib.h>

#include "cg_lower.h"

enum {
  P_Q, P_K, P_V,
  P_QSB, P_QSH, P_QSS, P_KSB, P_KSH, P_KSS, P_VSB, P_VSH, P_VSS,
  P_QP, P_KP, P_VP, NP
};

static const char *const names[NP] = {"q", "k", "v", "q_sb", "q_sh", "q_ss", "k_sb", "k_sh", "k_ss",
                                      "v_sb", "v_sh", "v_ss", "qp", "kp", "vp"};

int64_t cg_permute_blocks(const sieve_shape *s) {
  int64_t pieces = sieve_shape_tokens(s) * (s->head_dim / 8);
  return (pieces + CG_PERMUTE_THREADS - 1) / CG_PERMUTE_THREADS;
}

/* The layout's position -> token map over every head class, with the
** head free (the select chain of cg_kernel_exprs). */
static sieve_status idx_expr(cg_pattern *p, const sieve_shape *s, cg_ref *idx, cg_err *e) {
  cg_ref mask, kidx;
  return cg_kernel_exprs(p, s, &mask, idx, &kidx, e);
}

sieve_status cg_permute_map(cg_pattern *p, const sieve_shape *shape, int head, int32_t *out,
                            cg_err *e) {
  sieve_shape s;
  cg_shape_for(p, shape, &s);
  cg_ref idx;
  sieve_status st = idx_expr(p, &s, &idx, e);
  if (st) return st;
  int64_t vars[CG_NVARS] = {0}, n = sieve_shape_tokens(&s);
  vars[CG_V_HEAD] = head;
  for (int64_t i = 0; i < n; i++) {
    vars[CG_V_QPOS] = i;
    out[i] = (int32_t)cg_eval1(p->g, idx, vars);
  }
  return SIEVE_OK;
}

#define EM em

static LLVMValueRef vec_at(cg_em *em, LLVMValueRef base, LLVMValueRef off) {
  return cg_gep(em, em->t_i16, base, off);
}

static void copy16(cg_em *em, LLVMValueRef src, LLVMValueRef dst) {
  LLVMTypeRef v4 = LLVMVectorType(em->t_i32, 4);
  LLVMValueRef ld = LLVMBuildLoad2(em->b, v4, src, "");
  LLVMSetAlignment(ld, 16);
  LLVMValueRef stv = LLVMBuildStore(em->b, ld, dst);
  LLVMSetAlignment(stv, 16);
}

static void body(cg_em *em, LLVMValueRef *prm, cg_lower *lw, const sieve_shape *s) {
  int64_t S = sieve_shape_tokens(s), D = s->head_dim, per = D / 8;
  LLVMValueRef head = cg_sreg_read(em, CG_CTAID_Y), batch = cg_sreg_read(em, CG_CTAID_Z);
  LLVMValueRef g = CG_ADD(em, CG_MUL(em, cg_sreg_read(em, CG_CTAID_X), cg_i32(em, CG_PERMUTE_THREADS)),
                          cg_sreg_read(em, CG_TID_X));
  LLVMValueRef pos = CG_UDIV(em, g, cg_i32(em, per)), piece = CG_UREM(em, g, cg_i32(em, per));
  cg_if in;
  cg_if_begin(em, &in, CG_ICMP(em, LLVMIntULT, pos, cg_i32(em, S)));
  LLVMValueRef idx = pos;
  if (lw) {
    LLVMValueRef vars[CG_NVARS] = {0};
    vars[CG_V_QPOS] = pos;
    vars[CG_V_HEAD] = head;
    idx = cg_lower_emit(lw, em, vars);
  }
  LLVMValueRef b64 = CG_ZEXT64(em, batch), h64 = CG_ZEXT64(em, head), d0 = CG_ZEXT64(em, CG_MUL(em, piece, cg_i32(em, 8)));
  LLVMValueRef row = CG_ADD(em, CG_MUL(em, CG_ADD(em, CG_MUL(em, b64, cg_i64(em, s->heads)), h64), cg_i64(em, S)),
                            CG_ZEXT64(em, pos));
  LLVMValueRef dst_off = CG_ADD(em, CG_MUL(em, row, cg_i64(em, D)), d0), i64 = CG_ZEXT64(em, idx);
  for (int t = 0; t < 3; t++) {
    LLVMValueRef off = CG_ADD(em, CG_MUL(em, b64, prm[P_QSB + 3 * t]), CG_MUL(em, h64, prm[P_QSH + 3 * t]));
    off = CG_ADD(em, CG_ADD(em, off, CG_MUL(em, i64, prm[P_QSS + 3 * t])), d0);
    copy16(em, vec_at(em, prm[P_Q + t], off), vec_at(em, prm[P_QP + t], dst_off));
  }
  cg_if_end(em, &in);
  LLVMBuildRetVoid(em->b);
}

sieve_status cg_permute_build(cg_pattern *p, const sieve_shape *shape, cg_arch arch, char **ptx,
                              cg_err *e) {
  *ptx = NULL;
  sieve_shape s;
  cg_shape_for(p, shape, &s);
  sieve_status st = cg_shape_check(&s, e);
  if (st) return st;
  if (s.head_dim % 8) return cg_fail(e, SIEVE_ERR_SHAPE, "permute: head_dim %d is not a multiple of 8", s.head_dim);
  if (cg_permute_blocks(&s) * CG_PERMUTE_THREADS > INT32_MAX)
    return cg_fail(e, SIEVE_ERR_SHAPE, "permute: %lld tokens are too many", (long long)sieve_shape_tokens(&s));
  cg_ref idx;
  if ((st = idx_expr(p, &s, &idx, e))) return st;
  int64_t S = sieve_shape_tokens(&s);
  cg_range r[CG_NVARS];
  cg_kernel_ranges(r, S - 1, S - 1, s.heads, s.text);
  const cg_node *n = cg_node_at(p->g, idx);
  /* The identity needs no code: every class keeps model order. */
  cg_lower *lw = n->op == CG_VAR && n->imm == CG_V_QPOS ? NULL : cg_lower_new(p->g, idx, r, e);
  if (!lw && !(n->op == CG_VAR && n->imm == CG_V_QPOS)) return e->status;
  cg_em em;
  if ((st = cg_em_start(&em, "sieve_permute", e))) {
    cg_lower_free(lw);
    return st;
  }
  LLVMTypeRef ty[NP];
  for (int i = 0; i < NP; i++) ty[i] = i <= P_V || i >= P_QP ? em.t_gptr : em.t_i64;
  LLVMValueRef fn = cg_em_kernel(&em, CG_PERMUTE_KERNEL, ty, names, NP, CG_PERMUTE_THREADS, 0);
  LLVMValueRef prm[NP];
  for (int i = 0; i < NP; i++) prm[i] = LLVMGetParam(fn, (unsigned)i);
  body(&em, prm, lw, &s);
  st = cg_em_ptx(&em, arch, ptx, e);
  cg_em_dispose(&em);
  cg_lower_free(lw);
  return st;
}
