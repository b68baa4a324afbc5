/*
** How an attention kernel reads a partial block's bitmask (cg_blocks_bits.c
** lays one out: row r, word w, bit b is column 32 w + b of a block_q x
** block_k block, tokens past the sequence 0): which block needs masking,
** which table word a lane loads for a key step, and which bits the text
** padding and the sequence end clear. The kernel walks a table block in
** block_n-key steps and a warp holds rw of the CTA's block_m rows, so every
** one of these depends on how the kernel's tiles sit in the table's blocks.
**
** Plain integer emission, no loads or special registers: given constants,
** LLVM's builder folds each to a constant, so the tests run on the CPU the
** very arithmetic the kernels run (tests/test_attn_bits.c).
*/
#ifndef CG_ATTN_BITS_H
#define CG_ATTN_BITS_H

#include "cg_emit.h"
#include "sieve.h"

typedef struct cg_bits_geom {
  const sieve_shape *sh;  /* the kernel's shape, text geometry applied (cg_shape_for) */
  int bq, bk;             /* the table's query and key blocks */
  int bm, bn, rw;         /* the kernel's query rows (a CTA), key step, rows per warp (16 or 32) */
  int64_t seq;            /* tokens */
} cg_bits_geom;

/* The row of the warp's tile that `lane` loads bits for. */
LLVMValueRef cg_bits_lane_row(cg_em *e, const cg_bits_geom *g, LLVMValueRef lane);

/* Whether the key step at k0 needs masking for the CTA at q0: the block is
** partial, or it reaches text (padding is a run-time length), or past the
** sequence. */
LLVMValueRef cg_bits_need(cg_em *e, const cg_bits_geom *g, LLVMValueRef partial, LLVMValueRef q0,
                          LLVMValueRef k0);

/* The table index of the first of a lane's words for key step j: bidx is
** the block's bitmask (cg_tables_pack's offset), row0 the warp's first
** position, lr the lane's row (cg_bits_lane_row). */
LLVMValueRef cg_bits_word_at(cg_em *e, const cg_bits_geom *g, LLVMValueRef bidx, LLVMValueRef row0,
                             LLVMValueRef lr, LLVMValueRef j);

/* Word w of the step's bits (keys k0 + 32 w ..) for the query at qpos,
** `word` the bitmask's (or all ones for a block with none), with the bits
** cleared where the query or the key is text padding (tlen valid text
** tokens) or the key lies past the sequence. */
LLVMValueRef cg_bits_clear(cg_em *e, const cg_bits_geom *g, LLVMValueRef word, int w, LLVMValueRef qpos,
                           LLVMValueRef k0, LLVMValueRef tlen);

#endif
