/*
** wgmma through inline PTX ($N names operand N in LLVM's asm strings):
** LLVM's NVPTX backend has no wgmma intrinsics that take descriptors in
** this form, and the instruction's contract (no touching the accumulators
** between issue and wait) is kept by issuing, committing and waiting in one
** place and passing the accumulators through an empty asm after the wait,
** so no use of them is scheduled above it.
*/
#include "cg_wgmma.h"

#include <stdio.h>

#define E (t->em)

/*
** A shared-memory matrix descriptor in the 128-byte swizzle: start address
** >> 4 (bits 0-13), leading byte offset >> 4 (16-29), stride byte offset
** >> 4 (32-45), swizzle mode 1 (62-63). K-major operands ignore the leading
** offset (1 by convention); N-major ones step by it from one 64-column
** panel to the next. The stride offset is 1024: eight rows of 128 bytes.
*/
static LLVMValueRef desc(cg_tk *t, LLVMValueRef off, int lbo) {
  LLVMValueRef addr = LLVMBuildPtrToInt(E->b, cg_smem_at(E, off), E->t_i64, "");
  LLVMValueRef lo = CG_LSHR(E, CG_AND(E, addr, cg_i64(E, 0x3ffff)), cg_i64(E, 4));
  return CG_OR(E, lo, cg_i64(E, ((int64_t)(lbo >> 4) << 16) | (64ll << 32) | (1ll << 62)));
}

static void fence_regs(cg_tk *t, cg_rt *c, int n) {
  for (int i = 0; i < n; i++) {
    LLVMValueRef v = cg_rget(E, c->v[i]);
    cg_rset(E, c->v[i], cg_asm(E, E->t_f32, "", "=f,0", &v, 1, 1));
  }
}

static void plain(cg_tk *t, const char *text) {
  cg_asm(E, LLVMVoidTypeInContext(E->ctx), text, "", NULL, 0, 1);
}

/*
** The asm of one wgmma of n columns: accumulators $0 .. (in and out), then
** A (`areg` registers, or one descriptor when areg is 0), B's descriptor
** and the scale-d flag; trans_b for an N-major B.
*/
typedef struct wg_asm {
  char text[2048], cons[1024];
  LLVMTypeRef ret;
  int regs;
} wg_asm;

static void wg_asm_init(cg_tk *t, wg_asm *w, int n, int areg, int trans_b) {
  const char *ty = t->dt == CG_FP16 ? "f16" : "bf16";
  int regs = n / 2, x = 2 * regs, na = areg ? areg : 1;
  size_t tl = 0, cl = 0;
  tl += (size_t)snprintf(w->text + tl, sizeof w->text - tl,
                         "{\n.reg .pred p;\nsetp.ne.b32 p, $%d, 0;\nwgmma.mma_async.sync.aligned.m64n%dk16.f32.%s.%s {",
                         x + na + 1, n, ty, ty);
  for (int i = 0; i < regs; i++) tl += (size_t)snprintf(w->text + tl, sizeof w->text - tl, "%s$%d", i ? ", " : "", i);
  tl += (size_t)snprintf(w->text + tl, sizeof w->text - tl, "}, ");
  if (areg) {
    for (int i = 0; i < areg; i++)
      tl += (size_t)snprintf(w->text + tl, sizeof w->text - tl, "%s$%d", i ? ", " : "{", x + i);
    tl += (size_t)snprintf(w->text + tl, sizeof w->text - tl, "}, $%d, p, 1, 1, %d;\n}", x + na, trans_b);
  } else {
    tl += (size_t)snprintf(w->text + tl, sizeof w->text - tl, "$%d, $%d, p, 1, 1, 0, %d;\n}", x, x + 1, trans_b);
  }
  for (int i = 0; i < regs; i++) cl += (size_t)snprintf(w->cons + cl, sizeof w->cons - cl, "=f,");
  for (int i = 0; i < regs; i++) cl += (size_t)snprintf(w->cons + cl, sizeof w->cons - cl, "%d,", i);
  for (int i = 0; i < areg; i++) cl += (size_t)snprintf(w->cons + cl, sizeof w->cons - cl, "r,");
  snprintf(w->cons + cl, sizeof w->cons - cl, areg ? "l,r" : "l,l,r");
  LLVMTypeRef ft[128];
  for (int i = 0; i < regs; i++) ft[i] = E->t_f32;
  w->ret = LLVMStructTypeInContext(E->ctx, ft, (unsigned)regs, 0);
  w->regs = regs;
}

/* One wgmma: c's accumulators through it, `a` A's operands (registers or
** a descriptor), then B's descriptor; `keep` 0 makes it c = A B (scale-d
** false: c's old values are not read). */
static void wg_issue(cg_tk *t, const wg_asm *w, cg_rt *c, LLVMValueRef *a, int na, LLVMValueRef bdesc, int keep) {
  LLVMValueRef args[136];  /* n = 256: 128 accumulators, 4 A registers, B, scale-d */
  int n = 0;
  for (int i = 0; i < w->regs; i++) args[n++] = cg_rget(E, c->v[i]);
  for (int i = 0; i < na; i++) args[n++] = a[i];
  args[n++] = bdesc;
  args[n++] = cg_i32(E, keep);
  LLVMValueRef r = cg_asm(E, w->ret, w->text, w->cons, args, n, 1);
  for (int i = 0; i < w->regs; i++) cg_rset(E, c->v[i], cg_field(E, r, (unsigned)i));
}

static void begin(cg_tk *t, cg_rt *c) {
  fence_regs(t, c, c->n / 2);
  plain(t, "wgmma.fence.sync.aligned;");
}

void cg_wgmma_wait(cg_tk *t, int pending, cg_rt *c) {
  char text[64];
  snprintf(text, sizeof text, "wgmma.wait_group.sync.aligned %d;", pending);
  plain(t, text);
  if (c) fence_regs(t, c, c->n / 2);
}

/* A descriptor's step to k-slice k (16 columns) of a panelled tile of
** `rows` rows: 16 columns are 32 bytes of a panel's 128. */
static int64_t k_step(int rows, int k) { return ((k / 4) * rows * 128 + (k % 4) * 32) >> 4; }

void cg_wgmma_abt_async(cg_tk *t, cg_rt *c, const cg_st *a, LLVMValueRef a_row0, const cg_st *b, int zero) {
  wg_asm w;
  wg_asm_init(t, &w, b->rows, 0, 0);
  begin(t, c);
  /* One descriptor per operand, stepped by constants: shared offsets stay
  ** below 2^18, so adding (offset >> 4) to the start field never carries
  ** out of it. A's is laundered through an asm so that a loop around this
  ** product (A is Q, the same every iteration) recomputes its steps, not
  ** keeps one hoisted descriptor per step alive across the loop. */
  LLVMValueRef a0 = desc(t, CG_ADD(E, a->off, CG_MUL(E, a_row0, cg_i32(E, 128))), 16);
  a0 = cg_asm(E, E->t_i64, "mov.b64 $0, $1;", "=l,l", &a0, 1, 1);
  LLVMValueRef b0 = desc(t, b->off, 16);
  for (int k = 0; k < a->cols / 16; k++) {
    LLVMValueRef ad = CG_ADD(E, a0, cg_i64(E, k_step(a->rows, k)));
    wg_issue(t, &w, c, &ad, 1, CG_ADD(E, b0, cg_i64(E, k_step(b->rows, k))), !(zero && k == 0));
  }
  plain(t, "wgmma.commit_group.sync.aligned;");
}

void cg_wgmma_abt_rs_async(cg_tk *t, cg_rt *c, const cg_ra *a, const cg_st *b, int zero) {
  wg_asm w;
  wg_asm_init(t, &w, b->rows, 4, 0);
  begin(t, c);
  LLVMValueRef b0 = desc(t, b->off, 16);
  for (int k = 0; k < a->k / 16; k++) {
    LLVMValueRef regs[4];
    for (int i = 0; i < 4; i++) regs[i] = cg_rget(E, a->v[k * 4 + i]);
    wg_issue(t, &w, c, regs, 4, CG_ADD(E, b0, cg_i64(E, k_step(b->rows, k))), !(zero && k == 0));
  }
  plain(t, "wgmma.commit_group.sync.aligned;");
}

void cg_wgmma_ab_rs_async(cg_tk *t, cg_rt *c, const cg_ra *a, const cg_st *b) {
  wg_asm w;
  wg_asm_init(t, &w, b->cols, 4, 1);
  begin(t, c);
  LLVMValueRef b0 = desc(t, b->off, b->rows * 128);
  for (int k = 0; k < a->k / 16; k++) {
    LLVMValueRef regs[4];
    for (int i = 0; i < 4; i++) regs[i] = cg_rget(E, a->v[k * 4 + i]);
    /* 16 rows of B (keys) are 2048 bytes down every panel. */
    wg_issue(t, &w, c, regs, 4, CG_ADD(E, b0, cg_i64(E, k * 16 * 128 >> 4)), 1);
  }
  plain(t, "wgmma.commit_group.sync.aligned;");
}

void cg_wgmma_ab_async(cg_tk *t, cg_rt *c, const cg_st *a, const cg_st *b) {
  wg_asm w;
  wg_asm_init(t, &w, b->cols, 0, 1);
  begin(t, c);
  /* Laundered as abt's A is: the tile's start is the same every step. */
  LLVMValueRef a0 = desc(t, a->off, 16);
  a0 = cg_asm(E, E->t_i64, "mov.b64 $0, $1;", "=l,l", &a0, 1, 1);
  LLVMValueRef b0 = desc(t, b->off, b->rows * 128);
  for (int k = 0; k < a->cols / 16; k++) {
    LLVMValueRef ad = CG_ADD(E, a0, cg_i64(E, k_step(a->rows, k)));
    wg_issue(t, &w, c, &ad, 1, CG_ADD(E, b0, cg_i64(E, k * 16 * 128 >> 4)), 1);
  }
  plain(t, "wgmma.commit_group.sync.aligned;");
}

/*
** stmatrix writes four 8 x 8 matrices, a lane's register of each in the
** accumulator's place (row lane / 4, columns 2 (lane % 4) and one more),
** which are an A operand's four registers of a k-slice in order: rows 0-7
** and 8-15 of its first eight columns, then of its last eight. Lane l
** names row l % 8 of matrix l / 8. In the swizzle, chunk c of row r sits at
** chunk c ^ (r % 8); a slice's chunks are 2 (k % 4) and one more. A row
** starts at a multiple of 128 bytes, so slice k's lane address is the
** first slice's xor 32 (k % 4), stepped by panels. Only the first is kept
** through a loop (laundered, so the other three are made where used, not
** held): at D = 64 beside 192 keys of S and O the four spilled.
*/
void cg_wgmma_store_a(cg_tk *t, const cg_ra *a, const cg_st *dst) {
  LLVMValueRef l = t->lane, r8 = CG_AND(E, l, cg_i32(E, 7));
  LLVMValueRef row = CG_ADD(E, CG_SHL(E, CG_AND(E, t->warp, cg_i32(E, 3)), cg_i32(E, 4)),
                            CG_ADD(E, CG_AND(E, l, cg_i32(E, 8)), r8));
  LLVMValueRef lch = CG_XOR(E, CG_LSHR(E, l, cg_i32(E, 4)), r8);
  LLVMValueRef at0 = CG_ADD(E, CG_ADD(E, dst->off, CG_MUL(E, row, cg_i32(E, 128))), CG_SHL(E, lch, cg_i32(E, 4))), at[4];
  at0 = cg_asm(E, E->t_i32, "mov.b32 $0, $1;", "=r,r", &at0, 1, 1);
  for (int c = 0; c < 4; c++) at[c] = c ? CG_XOR(E, at0, cg_i32(E, 32 * c)) : at0;
  for (int k = 0; k < a->k / 16; k++) {
    LLVMValueRef args[5] = {cg_smem_at(E, CG_ADD(E, at[k % 4], cg_i32(E, k / 4 * dst->rows * 128)))};
    for (int i = 0; i < 4; i++) args[1 + i] = cg_rget(E, a->v[k * 4 + i]);
    cg_intr(E, "llvm.nvvm.stmatrix.sync.aligned.m8n8.x4.b16", &E->t_sptr, 1, args, 5);
  }
}

void cg_wgmma_abt(cg_tk *t, cg_rt *c, const cg_st *a, LLVMValueRef a_row0, const cg_st *b) {
  cg_wgmma_abt_async(t, c, a, a_row0, b, 0);
  cg_wgmma_wait(t, 0, c);
}

void cg_wgmma_ab_rs(cg_tk *t, cg_rt *c, const cg_ra *a, const cg_st *b) {
  cg_wgmma_ab_rs_async(t, c, a, b);
  cg_wgmma_wait(t, 0, c);
}

LLVMValueRef cg_wgmma_row0(cg_tk *t) { return CG_MUL(E, CG_LSHR(E, t->warp, cg_i32(E, 2)), cg_i32(E, 64)); }

void cg_wgmma_smem_fence(cg_tk *t) { plain(t, "fence.proxy.async.shared::cta;"); }
