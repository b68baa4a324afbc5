/*
** The bitmask kernels' arithmetic on a partial block's bits (cg_attn_bits.h).
*/
#include "cg_attn_bits.h"

#include "cg_lower.h"

#define E e

/* Keys of the sequence's ragged end: some table key block reaches past it. */
static int ragged(const cg_bits_geom *g) { return g->seq % g->bk != 0; }

LLVMValueRef cg_bits_lane_row(cg_em *e, const cg_bits_geom *g, LLVMValueRef lane) {
  return CG_AND(E, lane, cg_i32(E, g->rw - 1));
}

LLVMValueRef cg_bits_need(cg_em *e, const cg_bits_geom *g, LLVMValueRef partial, LLVMValueRef q0,
                          LLVMValueRef k0) {
  LLVMValueRef need = partial;
  LLVMValueRef tk = cg_text_overlap(E, g->sh, k0, g->bn), tq = cg_text_overlap(E, g->sh, q0, g->bm);
  if (tk) need = CG_OR(E, need, CG_OR(E, tk, tq));
  if (ragged(g)) need = CG_OR(E, need, CG_ICMP(E, LLVMIntSGT, CG_ADD(E, k0, cg_i32(E, g->bn)), cg_i32(E, g->seq)));
  return need;
}

/* A key step is key block j % sub of its table block; a warp's rows sit
** at row0 % block_q in the table's query block (block_m divides block_q). */
LLVMValueRef cg_bits_word_at(cg_em *e, const cg_bits_geom *g, LLVMValueRef bidx, LLVMValueRef row0,
                             LLVMValueRef lr, LLVMValueRef j) {
  int nw = g->bn / 32, wpr = g->bk / 32, sub = g->bk / g->bn;
  LLVMValueRef rr = CG_ADD(E, CG_UREM(E, row0, cg_i32(E, g->bq)), lr);
  return CG_ADD(E, CG_ADD(E, bidx, CG_MUL(E, rr, cg_i32(E, wpr))), CG_MUL(E, CG_UREM(E, j, cg_i32(E, sub)), cg_i32(E, nw)));
}

static LLVMValueRef clamp32(cg_em *e, LLVMValueRef v) {
  v = CG_SEL(E, CG_ICMP(E, LLVMIntSLT, v, cg_i32(E, 0)), cg_i32(E, 0), v);
  return CG_SEL(E, CG_ICMP(E, LLVMIntSGT, v, cg_i32(E, 32)), cg_i32(E, 32), v);
}

/* Bits 0 .. n - 1 (n in 0..32). */
static LLVMValueRef low_bits(cg_em *e, LLVMValueRef n) {
  LLVMValueRef m = CG_SUB(E, CG_SHL(E, cg_i32(E, 1), CG_AND(E, n, cg_i32(E, 31))), cg_i32(E, 1));
  return CG_SEL(E, CG_ICMP(E, LLVMIntSGT, n, cg_i32(E, 31)), cg_i32(E, -1), m);
}

/* Bits of the 32 keys from `base` at positions from p on. */
static LLVMValueRef from_bits(cg_em *e, LLVMValueRef p, LLVMValueRef base) {
  return CG_XOR(E, low_bits(e, clamp32(e, CG_SUB(E, p, base))), cg_i32(E, -1));
}

/*
** Keys from the sequence's end on are cleared through the end of the
** word: a key step past the end (the second 32 keys of a 64-key block
** whose first holds the end) has every key out. Bounding them by
** [seq, seq + block_n) instead left a step that starts past seq with its
** last keys in, where a full block's all-ones took them (zero-filled K:
** score 0, so they diluted the row's softmax).
*/
LLVMValueRef cg_bits_clear(cg_em *e, const cg_bits_geom *g, LLVMValueRef word, int w, LLVMValueRef qpos,
                           LLVMValueRef k0, LLVMValueRef tlen) {
  const sieve_shape *s = g->sh;
  LLVMValueRef base = CG_ADD(E, k0, cg_i32(E, 32 * w)), bad = cg_i32(E, 0);
  if (s->text) {
    int64_t t0 = s->text_after ? (int64_t)s->frames * s->height * s->width : 0;
    LLVMValueRef plo = CG_ADD(E, cg_i32(E, t0), tlen), phi = cg_i32(E, t0 + s->text);
    /* padding keys: from plo on, less from phi on */
    bad = CG_XOR(E, from_bits(e, plo, base), from_bits(e, phi, base));
    LLVMValueRef qpad = CG_AND(E, CG_ICMP(E, LLVMIntSGE, qpos, plo), CG_ICMP(E, LLVMIntSLT, qpos, phi));
    word = CG_SEL(E, qpad, cg_i32(E, 0), word);
  }
  if (ragged(g)) bad = CG_OR(E, bad, from_bits(e, cg_i32(E, g->seq), base));
  return CG_AND(E, word, CG_XOR(E, bad, cg_i32(E, -1)));
}
