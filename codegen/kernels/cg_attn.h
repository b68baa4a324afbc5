/*
** The attention forward kernel generator: block-sparse flash attention,
** written in tile operations (cg_tile.h), lowered to LLVM IR, emitted as PTX.
**
** Kernel ABI (one kernel per pattern x shape x dtype x config x arch; the
** name is returned by the generator):
**   params, in order:
**     ptr q, k, v        global, bf16/fp16, element (b, h, s, d) at
**                        b*sb + h*sh + s*ss + d (strides in elements, i64)
**     ptr o              same dtype, same indexing with its own strides
**     ptr lse            global f32 [B, H, S] contiguous, natural log, indexed
**                        by token row like O
**     i64 q_sb, q_sh, q_ss, k_sb, k_sh, k_ss, v_sb, v_sh, v_ss, o_sb, o_sh, o_ss
**     ptr tabs           global i32: packed block tables (cg_tables_pack)
**     ptr head_off       global i32 [H]: offset in tabs of head h's table
**     i32 step, layer    the denoising step and layer the tables were built
**                        for (>= 0: the compiled mask treats them as such)
**     f32 scale          softmax scale (1/sqrt(D) by default)
**     ptr tlen           global i32 [B]: valid text tokens per batch element,
**                        or NULL (all valid); the padding past them neither
**                        attends nor is attended (O = 0, LSE = -inf there)
**   grid (ceil(S / block_m), H, B); block (32 * warps); dynamic shared
**   memory cg_attn_smem_bytes() (above 48 KB for most configs: the
**   launcher raises the function's dynamic shared-memory limit first).
**   Pointers need only the alignment of their element type, except that
**   rows of Q, K, V must start on 16 bytes (cp.async): ss and the base
**   pointers multiples of 8 elements. S, H, D, the table sizes, block sizes
**   and layouts are compiled in; batch, pointers, strides, step, layer,
**   scale and the valid text counts are parameters.
**
** A packed table for nq query blocks is
**   rowptr[nq + 1], nfull[nq], idx[...]
** where row qb's key blocks are idx[rowptr[qb] .. rowptr[qb+1]), full ones
** first (nfull[qb] of them), then partial ones; nq and the block sizes are
** cg_attn_table_blocks' (the pattern's block.q / block.k where it declares
** them; block.q as cg_attn_table_q says). A CTA of block_m rows reads table row
** (blockIdx.x * block_m) / block.q and walks each table block in block_n
** steps.
**
** With bits (cg_attn_spec.bits) nonzero, every entry is two int32s, the
** key block and the offset from the table's start of its bitmask (-1:
** none), as cg_tables_pack writes them for a tableset built with the same
** classes: a partial block with a bitmask takes its bits (lane l of a warp
** loads its row's words, applied by shuffles), one without evaluates the
** predicate, and blocks that reach text padding or past the sequence AND
** their bits with a range test per 32 keys.
**
** The kernel works in layout positions: a CTA's query rows and a key block's
** rows are positions in the head class's layout; the row of Q/K/V/O read
** or written for position p is the layout's idx(p) (cg_kernel_exprs), so no
** separate permute pass is needed (except by the TMA kernel below, which
** reads Q, K, V already permuted). Partial blocks evaluate the compiled mask
** per (query, key) position pair; disallowed pairs get -inf; the last key
** block is bounds-checked when S is not a multiple of block.k. A row with no
** allowed key writes O = 0 and LSE = -inf.
*/
#ifndef CG_ATTN_H
#define CG_ATTN_H

#include "cg_blocks.h"
#include "cg_ptx.h"
#include "cg_attn_sched.h"
#include "cg_tile.h"  /* cg_dtype */

typedef struct cg_attn_config {
  int block_m;   /* 64 (with 8 warps on sm_90a: CG_WS1_WARPS), 128; 192 (CG_WS3_WARPS); divides the table's query block (cg_attn_table_blocks) */
  int block_n;   /* 32, 64, 128; 192 (warp-specialised); divides the table's key block */
  int warps;     /* 4, 8; or CG_WS_WARPS, CG_WS3_WARPS, CG_WS1_WARPS at block_m 64 (sm_90a) */
  int stages;    /* 1, 2, 3; 4 (warp-specialised): pipeline depth for K/V */
  int sched;     /* CG_SCHED_GRID (0): a CTA per query tile; CG_SCHED_STATIC, CG_SCHED_ATOMIC
                 ** (warp-specialised): a persistent grid walking tiles longest first
                 ** (cg_attn_sched.h) */
} cg_attn_config;

/*
** warps = 12 on sm_90a is the warp-specialised kernel: warpgroup 0 loads
** Q, K and V tiles by TMA into a ring of `stages` slots on mbarriers, and
** warpgroups 1 and 2 (64 query rows each) run the products as asynchronous
** wgmma groups, the softmax of one key block overlapping the products of
** the next. It needs block_m 128 and block_n 64, 128 or 192, and three
** more parameters after scale:
**     .param .align 64 .b8 tmap_q[128], tmap_k[128], tmap_v[128]
** the driver's tensor maps (cuTensorMapEncodeTiled) of Q, K and V as 4-D
** bf16/fp16 tensors (D, S, H, B) with byte strides (ss, sh, sb), box
** (64, block_m) for Q and (64, block_n) for K and V, 128-byte swizzle, zero
** fill; heads and batch as the launch's grid. Tensors the driver will not
** map (TMA wants 16-byte aligned bases and strides) take the 8-warp kernel.
**
** TMA copies affine tiles, so this kernel reads Q, K and V in layout order:
** for a pattern with a head class in another layout (cg_attn_permutes) the
** tensor maps must describe Q, K and V already gathered into each head's
** layout order (the permute kernel of cg_permute.h does it), while O and
** the LSE are still written through the layout's idx(p), in token order,
** and the mask still sees layout coordinates. The q, k, v pointers and
** strides are then not read.
**
** With cfg.sched (CG_SCHED_STATIC, CG_SCHED_ATOMIC) the warp-specialised
** kernel is persistent: four more parameters after the tensor maps and a
** grid of (CTAs, 1, 1), each CTA walking tiles in the host's order
** (cg_attn_sched.h).
**
** warps = 16 is the same kernel with three consumer warpgroups (block_m
** 192), as FlashAttention-3 runs head dim 64: a third more query rows share
** each K/V tile, so the producer's copies and the ring's barriers cost less
** per product. The register file is split 32 (producer) / 160 (each
** consumer), which leaves room for S, P and O of 128-key steps at D = 64.
** Either warp-specialised kernel also takes 192-key steps (block_n 192) and
** 4 stages where shared memory and registers allow.
**
** warps = 8 with block_m 64 (8 plain warps need 128 rows) is the same
** kernel with one consumer warpgroup, compiled for two CTAs a
** multiprocessor (three at D = 64 with 64-key steps: ws_ctas): for query
** blocks of 64 tokens whose key blocks differ row by row (AdaSpa's
** search), which a CTA of merged rows would visit as their union. The
** CTAs' products and softmax interleave in place of the ping-pong, which
** one warpgroup has no partner for. Grid schedule only.
*/
#define CG_WS_WARPS 12
#define CG_WS3_WARPS 16
#define CG_WS1_WARPS 8

typedef struct cg_attn_spec {
  cg_pattern *pattern;
  sieve_shape shape;     /* batch is not compiled in; the rest is */
  cg_dtype dtype;
  cg_arch arch;
  cg_attn_config cfg;
  uint32_t bits;         /* head classes whose partial blocks read bitmasks (cg_bits_classes); 0: none */
  /*
  ** Segments (the warp-specialised kernel, identity layouts): one more
  ** parameter, `segs` (f32 *), last after the persistent grid's (present
  ** whether used or not), where each step also writes, for row i and each
  ** 64 keys g of the step, log2 of sum over those keys of 2^(S c) with
  ** c = scale log2(e), at segs[((b H + h) ceil(S / 64) + g) S + i]; S the
  ** sequence, H the spec's heads, (b, h) as the launch numbers them. With
  ** the LSE, the attention mass of rows and key blocks is sums of
  ** 2^(seg - LSE log2(e)) (AdaSpa's first search from the dense pass).
  */
  int segs;
} cg_attn_spec;

/* The kernel takes tensor maps (the warp-specialised sm_90a kernel). */
int cg_attn_uses_tma(const cg_attn_spec *s);
/* The config is a warp-specialised one (12 or 16 warps, or 8 over 64 rows),
** which only sm_90a runs. */
int cg_attn_config_ws(const cg_attn_config *c);
/* ... and reads them in layout order: Q, K, V must be permuted first. */
int cg_attn_permutes(const cg_attn_spec *s);

/*
** The query block of the tables the kernel reads: the pattern's, except
** where the warp-specialised kernel runs block_m rows over smaller query
** blocks of a static pattern (64-token blocks under 128 or 192 rows; 192,
** three consumer warpgroups, is the default for them on sm_90a): then
** tables built at block_m-token query blocks, from a copy of the pattern
** with that block (the plan makes it). Each key block of such a table is
** the union of the merged rows' lists; a partial one's bitmask covers all
** block_m rows, with zeros where a row's own 64-token block skipped it.
** At hunyuan-720p the visited block area grows from 10.72% to 11.47%
** (two merged) and 12.19% (three) for radial, from 12.92% to 13.06% and
** 13.19% for dilated; in exchange the blocks run on the TMA pipeline with
** two or three consumer warpgroups and their ping-pong.
*/
int cg_attn_table_q(const cg_attn_spec *s);
/*
** The table blocks (query, key; tokens) a kernel of spec s reads: the
** pattern's own where it declares them; else, for a pattern whose tables a
** plan builds for itself (static selection, identity layouts), blocks of
** the config's tile (the smallest multiple of block_m, block_n that is at
** least 128); else 128. The tables a plan builds for s must have these.
*/
void cg_attn_table_blocks(const cg_attn_spec *s, int *bq, int *bk);

/*
** Whether a static pattern's every class holds for every pair of the
** shape's tokens at every step and layer, though the script's mask is not
** the constant true: it folds to true under the shape's constants (lvsa at
** or below its training length, where every frame is an anchor). A plan
** of the default config then runs the dense kernel, whose config and
** table-free loop suit it, and builds no tables (SIEVE_FOLD=0 keeps the
** pattern's kernel, for measurement). Attention over every key does not
** depend on the order of the keys, so layouts do not matter here. 0 when
** it cannot tell (out of memory included): the pattern's kernel is right.
*/
int cg_attn_folds_dense(cg_pattern *p, const sieve_shape *shape);
/* Every class's mask is true everywhere: no partial blocks, and a pattern
** sparse only by its selection (AdaSpa) allows every pair. */
int cg_attn_mask_free(const cg_pattern *p);

/* The config a plan uses when the tuning database has none. */
cg_attn_config cg_attn_default_config(const cg_attn_spec *s);
/* The head classes a plan gives partial-block bitmasks (SIEVE_PARTIAL
** through cg_bits_env; the cost's choice under =auto). */
uint32_t cg_attn_bits(const cg_attn_spec *s);
/*
** Whether the warp-specialised bitmask kernel reads its table entries and
** bitmask words a step ahead of their use (the default; SIEVE_BITS_AHEAD=0
** reads them at the step, for measurement; the cache key carries it).
*/
int cg_attn_bits_ahead(const cg_attn_spec *s);
/*
** Whether the warp-specialised kernel rescales O by the last softmax's
** maxima under S's product, between S's issue and P V's (FlashAttention-3's
** order), or after P V's wait: the first with one or two consumer
** warpgroups, the second with three. SIEVE_RESCALE_UNDER_S=1 or 0 sets it
** for measurement; cg_attn_rescale_moved says the switch moved it from the
** default (the kernel name then ends in _rs or _rv, and the cache key
** carries it).
*/
int cg_attn_rescale_under_s(const cg_attn_spec *s);
int cg_attn_rescale_moved(const cg_attn_spec *s);
/* 0 when cfg is valid for the spec; else SIEVE_ERR_ARG with the reason. */
sieve_status cg_attn_check(const cg_attn_spec *s, cg_err *e);
size_t cg_attn_smem_bytes(const cg_attn_spec *s);

/* Generates the kernel. *ptx and *name are malloc'd. When llvm_ir is not
** NULL it receives the module's textual IR before optimisation. */
sieve_status cg_attn_build(const cg_attn_spec *s, char **ptx, char **name,
                           char **llvm_ir, cg_err *e);

#endif
