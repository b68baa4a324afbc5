/*
** sieve: JIT-generated block-sparse attention for video diffusion
** transformers. This is the one public header.
**
** A pattern is a Lua script (see patterns/). sieve loads it into a pattern
** IR, builds block tables for a shape, generates GPU kernels from it, and
** runs them. Every call returns a sieve_status; the words for the last
** failure on a context come from sieve_errmsg(). The library never prints.
**
** Threads: a sieve_ctx and everything made from it belong to one thread at
** a time; use one context per thread, or serialise calls on a shared one.
*/
#ifndef SIEVE_H
#define SIEVE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum sieve_status {
  SIEVE_OK = 0,
  SIEVE_ERR_ARG,         /* a bad argument: unknown name, bad value */
  SIEVE_ERR_SCRIPT,      /* a pattern script failed: message has file:line */
  SIEVE_ERR_LIMIT,       /* a script ran past its instruction or memory limit */
  SIEVE_ERR_SHAPE,       /* a shape sieve cannot run: zero sizes, overflow */
  SIEVE_ERR_NOMEM,       /* out of host memory */
  SIEVE_ERR_IO,          /* a file could not be read or written */
  SIEVE_ERR_CODEGEN,     /* LLVM could not build or emit a kernel */
  SIEVE_ERR_NO_DRIVER,   /* libcuda.so.1 is absent or lacks a symbol */
  SIEVE_ERR_NO_GPU,      /* the driver found no usable GPU */
  SIEVE_ERR_CUDA,        /* a driver call failed: message names it */
  SIEVE_ERR_CACHE,       /* a kernel cache entry was damaged (it is rebuilt) */
  SIEVE_ERR_UNSUPPORTED  /* valid, but not supported by this build */
} sieve_status;

/* A static description of each status; sieve_errmsg() has the details. */
const char *sieve_strerror(sieve_status st);
const char *sieve_version(void);

/* ---------------------------------------------------------------- context */

typedef struct sieve_ctx sieve_ctx;

sieve_status sieve_open(sieve_ctx **out);
void sieve_close(sieve_ctx *ctx);
/* The message of the last failed call on ctx ("" after a success). */
const char *sieve_errmsg(const sieve_ctx *ctx);

/* ----------------------------------------------------------------- shapes */

/*
** A video DiT's token grid. Video tokens are laid out frame by frame, row by
** row (t, y, x); `text` tokens come before them, or after when text_after.
** Sequence length is text + frames * height * width.
*/
typedef struct sieve_shape {
  int batch;
  int heads;
  int head_dim;
  int frames;      /* T */
  int height;      /* Y, in tokens */
  int width;       /* X, in tokens */
  int text;        /* text tokens */
  int text_after;  /* 0: text before the video tokens; 1: after */
} sieve_shape;

/* Presets for real models: "wan-1.3b-480p", "wan-14b-720p", "hunyuan-720p",
** "cogvideox-1.5". Fills *out (batch 1). */
sieve_status sieve_shape_preset(const char *name, sieve_shape *out);
/* The i-th preset name, NULL past the end. */
const char *sieve_shape_preset_name(int i);
/* Checks sizes and 32-bit index limits; ctx may be NULL (no message then). */
sieve_status sieve_shape_check(sieve_ctx *ctx, const sieve_shape *s);
/* text + frames * height * width; -1 for NULL, a negative size, or a count
** past int64. */
int64_t sieve_shape_tokens(const sieve_shape *s);

/* --------------------------------------------------------------- patterns */

typedef struct sieve_pattern sieve_pattern;

/*
** Loads a pattern script. `overrides` is a NULL-terminated list of
** "name=value" strings for the script's params (NULL for none); an unknown
** name is an error. Scripts run sandboxed, with instruction and memory
** limits; errors name the script file and line.
*/
sieve_status sieve_pattern_load(sieve_ctx *ctx, const char *path,
                                const char *const *overrides,
                                sieve_pattern **out);
/* As above, from a string; `chunkname` names it in messages. */
sieve_status sieve_pattern_load_string(sieve_ctx *ctx, const char *chunkname,
                                       const char *source,
                                       const char *const *overrides,
                                       sieve_pattern **out);
void sieve_pattern_free(sieve_pattern *p);
const char *sieve_pattern_name(const sieve_pattern *p);
/* The canonical text of the pattern IR; owned by p. Equal patterns give
** equal text, and sieve_pattern_hash() hashes that text. */
const char *sieve_pattern_ir(const sieve_pattern *p);
uint64_t sieve_pattern_hash(const sieve_pattern *p);
/* The shape the pattern runs on for the caller's `in`: grid sizes `in`
** leaves at 0 come from the script's `geometry`, and text geometry the
** script declares is its own. Tables, plans and checks all use this.
** With no pattern, *out is *in; with no `in`, all zeros; no out, no-op. */
void sieve_pattern_shape(const sieve_pattern *p, const sieve_shape *in, sieve_shape *out);

/* ----------------------------------------------------------- block tables */

typedef struct sieve_tables sieve_tables;

/*
** Per-head block tables for one shape at one (step, layer): for each query
** block, the key blocks that are full (mask true on every token pair) and
** partial (mixed), in CSR form. Heads whose mask and layout coincide share
** one table. Which blocks are full, partial or empty is exact; the density
** of irregular masks may be estimated (sieve_table_view.estimated_blocks),
** since counting every token pair of every partial block costs seconds.
** The blocks are the pattern's; a plan's kernel may read tables of its own
** blocks (64-token query blocks merged into the sm_90a kernel's rows,
** blocks left to its tile), which `sieve show` reports beside these.
*/
sieve_status sieve_tables_build(sieve_ctx *ctx, const sieve_pattern *p,
                                const sieve_shape *shape, int step, int layer,
                                sieve_tables **out);
void sieve_tables_free(sieve_tables *t);

typedef struct sieve_tables_info {
  int heads;
  int tables;          /* distinct tables */
  int q_blocks, k_blocks;
  int block_q, block_k;
  double build_ms;     /* wall time of sieve_tables_build */
  /* Classification work, over all distinct tables: pairs the interval test
  ** decided, and what exact refinement made of the undecided ones. */
  int64_t interval_full, interval_empty, interval_undecided;
  int64_t refined_full, refined_empty, refined_partial;
  /* Device memory of the distinct tables as a plan packs them, and the
  ** bound past which sieve_plan_create fails with SIEVE_ERR_LIMIT
  ** (SIEVE_TABLES_MAX_MB, default 4096). */
  int64_t bytes, max_bytes;
  /* Of bytes: the partial-block bitmasks (classes whose predicate costs
  ** more per element than a bit; SIEVE_PARTIAL=predicate|bitmask forces
  ** the choice). 0 when every class evaluates its predicate. */
  int64_t bitmask_bytes;
} sieve_tables_info;

void sieve_tables_info_get(const sieve_tables *t, sieve_tables_info *out);
int sieve_tables_head_table(const sieve_tables *t, int head);

typedef struct sieve_table_view {
  int q_blocks;
  const int32_t *full_ptr, *full_idx;  /* CSR: row qb is [ptr[qb], ptr[qb+1]) */
  const int32_t *part_ptr, *part_idx;
  int64_t full_blocks, partial_blocks, empty_blocks;
  double density;      /* allowed token pairs / all token pairs */
  const char *layout;  /* the head class's layout, e.g. "identity", "tile{2,8,8}" */
  const char *klass;   /* the head class's name */
  /* Partial blocks whose allowed pairs density estimates from sampled
  ** query tokens (classes are always exact); 0: density is exact. */
  int64_t estimated_blocks;
  int64_t bytes;       /* this table's packed device memory */
  /* sieve.layout.auto: the layout chosen and its runners-up, with the
  ** block area each would visit (partial blocks weighted by their cost;
  ** ">=" marks a lower bound, for those ruled out without a score); NULL
  ** for a layout the pattern fixes. */
  const char *layout_choice;
  /* Partial blocks: 1 when they carry bitmasks (the kernel reads bits), 0
  ** when the kernel evaluates the predicate; its instructions per (query,
  ** key) pair, which chose; the distinct bitmasks and their bytes. */
  int bitmask;
  int pair_ops;
  int64_t bitmasks, bitmask_bytes;
} sieve_table_view;

sieve_status sieve_tables_view(const sieve_tables *t, int table,
                               sieve_table_view *out);

/* ---------------------------------------------------------------- devices */

/*
** sieve reaches the GPU through libcuda.so.1, opened at first use (the
** environment variable SIEVE_LIBCUDA names another file). Without it these
** calls return SIEVE_ERR_NO_DRIVER; with no GPU, SIEVE_ERR_NO_GPU. Nothing
** else in sieve needs a GPU.
*/
typedef struct sieve_device_info {
  int ordinal;
  char name[256];
  int sm_major, sm_minor;  /* compute capability, e.g. 9 and 0 */
  int sm_count;            /* streaming multiprocessors */
  int smem_per_block;      /* shared memory a block may opt into, bytes */
  int driver_version;      /* e.g. 12040 for CUDA 12.4 */
} sieve_device_info;

/* GPUs the driver sees (0 with a driver and no GPU is not an error). */
sieve_status sieve_device_count(sieve_ctx *ctx, int *out);
/* Describes GPU `ordinal` without creating a CUDA context on it. */
sieve_status sieve_device_query(sieve_ctx *ctx, int ordinal,
                                sieve_device_info *out);
/*
** Makes ctx's plans run on GPU `ordinal`: its primary context is retained
** (until sieve_close) and made current on the calling thread. Without this
** call plans use the calling thread's current context, else device 0.
*/
sieve_status sieve_device_open(sieve_ctx *ctx, int ordinal);

/* ----------------------------------------------------------- kernel cache */

/*
** Compiled kernels are kept on disk, keyed by everything that changes their
** code (pattern IR, shape, dtype, config, target, LLVM, sieve and driver
** versions). The directory is $SIEVE_CACHE_DIR, else $XDG_CACHE_HOME/sieve,
** else ~/.cache/sieve; its size is kept under $SIEVE_CACHE_MAX_MB MiB
** (default 1024) by evicting least recently used kernels. Entries are
** written atomically and checked when read: a damaged one is removed and
** rebuilt. Several processes may share one directory.
*/

/* The directory ctx's cache uses (created if missing); owned by ctx. */
sieve_status sieve_cache_dir(sieve_ctx *ctx, const char **out);
/* Uses `dir` from now on; NULL goes back to the environment's choice. */
sieve_status sieve_cache_set_dir(sieve_ctx *ctx, const char *dir);

typedef struct sieve_cache_entry {
  const char *key;     /* the key the entry is stored under; NULL if damaged */
  const char *path;
  int64_t bytes;       /* file size */
  int64_t atime, mtime;  /* seconds since the epoch; mtime is the last use */
} sieve_cache_entry;

/* Calls fn on every entry, in no set order, until fn returns nonzero. The
** entry's strings live until fn returns. */
sieve_status sieve_cache_list(sieve_ctx *ctx,
                              int (*fn)(const sieve_cache_entry *ent, void *ud),
                              void *ud);

typedef struct sieve_cache_info {
  const char *dir;     /* owned by ctx */
  int64_t entries;
  int64_t bytes;
  int64_t limit;       /* bytes; 0 means no limit */
} sieve_cache_info;

sieve_status sieve_cache_stats(sieve_ctx *ctx, sieve_cache_info *out);
/* Removes every entry; *removed (when not NULL) gets how many. */
sieve_status sieve_cache_clear(sieve_ctx *ctx, int64_t *removed);

/* ------------------------------------------------------------ attention */

typedef struct sieve_plan sieve_plan;

typedef enum sieve_dtype { SIEVE_BF16 = 0, SIEVE_FP16 = 1 } sieve_dtype;

/* Kernel tuning knobs; all zeros means "the tuned or default config". */
typedef struct sieve_config {
  int block_m;   /* query rows per CTA: 64, 128; 192 on sm_90a (three consumers) */
  int block_n;   /* key rows per inner step: 32, 64, 128; 192 on the warp-specialised kernel */
  int warps;     /* 4, 8; on sm_90a 12 or 16: a TMA producer warpgroup and two or
                 ** three consumers */
  int stages;    /* K/V pipeline depth: 1, 2, 3; 4 on the warp-specialised kernel */
  int sched;     /* 0: a CTA per query tile; on the warp-specialised kernel, 1: a
                 ** persistent grid walking tiles longest first, each CTA
                 ** striding through them; 2: the same, drawing from a counter */
} sieve_config;

/*
** A device tensor [B, H, S, D] in caller-owned memory: element (b, h, s, d)
** is at ptr + (b*stride_b + h*stride_h + s*stride_s + d) elements. Both
** BHSD and BSHD tensors fit without copies; the last dim is contiguous.
*/
typedef struct sieve_tensor {
  uint64_t ptr;  /* CUdeviceptr */
  int64_t stride_b, stride_h, stride_s;
} sieve_tensor;

/*
** Makes a plan: block tables for the shape, the kernel (from the disk cache,
** or generated and compiled), device buffers for the tables. Uses the
** current CUDA context of the calling thread, or the primary context of
** device 0 when there is none. On an sm_90 GPU the kernel targets sm_90a
** (Hopper's wgmma), elsewhere sm_80 (mma.sync). Running a plan again
** compiles nothing and allocates nothing. cfg NULL or all zero: the config
** `sieve tune` stored for this pattern, shape, dtype and GPU, else the
** default chosen for the shape; only sched set: the default config on that
** schedule; otherwise all of block_m, block_n, warps and stages.
*/
sieve_status sieve_plan_create(sieve_ctx *ctx, const sieve_pattern *p,
                               const sieve_shape *shape, sieve_dtype dtype,
                               const sieve_config *cfg, sieve_plan **out);
/* Sets the denoising step and layer; tables that depend on them are
** rebuilt (only when they change). */
sieve_status sieve_plan_set_step(sieve_plan *plan, int step, int layer);
/*
** The prompt's real length: valid[b] of the shape's text tokens are valid in
** batch element b (0 .. text; n must be the batch), the rest are padding.
** Padding keys are masked out of every row, and padding rows see no key
** (O = 0, LSE = -inf). A kernel argument: no table rebuild, no recompile,
** one kernel for every prompt length. valid NULL: the whole text, as at
** creation. Runs enqueued after the call see the new lengths.
*/
sieve_status sieve_plan_set_text_len(sieve_plan *plan, const int *valid, int n);
/* The config the plan's kernel was built with (all zeros for no plan). */
void sieve_plan_config(const sieve_plan *plan, sieve_config *out);
/* Fraction of token pairs the plan computes (over all heads); 0 for no plan.
** A plan whose tables the GPU builds (masks that read the step or layer,
** SIEVE_TABLES=gpu) counts it on the host at the first call, which then
** costs a host table build; NaN if that fails. */
double sieve_plan_density(const sieve_plan *plan);
/*
** O = softmax(Q K^T * scale + mask) V and the row log-sum-exp (fp32, natural
** log, [B, H, S] contiguous) on `stream` (a CUstream; NULL for the default
** stream). scale <= 0 means 1/sqrt(head_dim). Rows with no allowed key get
** O = 0 and LSE = -inf.
*/
sieve_status sieve_attention(sieve_plan *plan, const sieve_tensor *q,
                             const sieve_tensor *k, const sieve_tensor *v,
                             const sieve_tensor *o, uint64_t lse, float scale,
                             void *stream);
void sieve_plan_free(sieve_plan *plan);

/* ------------------------------------------------------ dynamic patterns */

/*
** Patterns whose blocks are chosen at run time, from the inputs, drive a
** sequence of denoising steps through a dynamic plan, which keeps the
** choice from one step to the next:
**   sieve.search (AdaSpa): at the pattern's search steps, attention over
**     the allowed set, then a generated search picks each input's and
**     head's key blocks from the LSE; the steps until the next search
**     reuse them;
**   sieve.profile (Sparse VideoGen): at the profiling steps, sampled query
**     rows decide each input's and head's class (this step waits for the
**     GPU); every head then runs with its class's mask and layout. In
**     mode "search" (STA's mask search) the errors are kept for a
**     mask-search file and the steps run full attention; in mode "file"
**     each (step, layer)'s classes come from such a file.
** All device memory is allocated here; a step allocates nothing. One
** dynamic plan keeps one choice: use one per layer.
*/
typedef struct sieve_dynplan sieve_dynplan;

sieve_status sieve_dynplan_create(sieve_ctx *ctx, const sieve_pattern *p,
                                  const sieve_shape *shape, sieve_dtype dtype,
                                  sieve_dynplan **out);
/* sieve_plan_set_text_len for a dynamic plan: the attention, the search
** and the profiling all leave the padding out. */
sieve_status sieve_dynplan_set_text_len(sieve_dynplan *d, const int *valid, int n);
/* One step of attention, as sieve_attention; *chose (may be NULL) is 1
** when this step searched or profiled. */
sieve_status sieve_dynplan_step(sieve_dynplan *d, int step, int layer,
                                const sieve_tensor *q, const sieve_tensor *k,
                                const sieve_tensor *v, const sieve_tensor *o,
                                uint64_t lse, float scale, void *stream,
                                int *chose);
/* Fraction of key blocks (search) or token pairs (profile) the last step
** computed, heads averaged; waits for the GPU. */
sieve_status sieve_dynplan_density(sieve_dynplan *d, double *out);
/*
** A profiling pattern in mode "search": writes each head's class of least
** error (summed over the steps run so far at each (step, layer), over every
** input) to the mask-search file at path, which a pattern in mode "file"
** reads. Entries of other (step, layer)s already in the file are kept, so
** one dynamic plan per layer may write to the same file; a file made for
** another pattern, shape or set of classes is refused.
*/
sieve_status sieve_dynplan_save_search(sieve_dynplan *d, const char *path);
void sieve_dynplan_free(sieve_dynplan *d);

/*
** What a dynamic plan chose, read back so that a reference of the original
** method can check it (the choice itself stays on the GPU while steps run).
** kind: SIEVE_DYNPLAN_SEARCH for a block search (sieve.search),
** SIEVE_DYNPLAN_PROFILE for profiling (sieve.profile); each kind answers
** its own call below and refuses the other's with SIEVE_ERR_ARG.
** A search's blocks are the pattern's block_q x block_k blocks in the
** order of its layout; profiling's classes are the pattern's head classes,
** in its order (sieve_dynplan_class_name).
*/
enum { SIEVE_DYNPLAN_SEARCH = 1, SIEVE_DYNPLAN_PROFILE = 2 };
typedef struct sieve_dynplan_info {
  int kind;
  int batch, heads;
  int q_blocks, k_blocks, block_q, block_k;  /* search; 0 for profiling */
  int classes, samples;  /* profiling: head classes, sampled rows that decide */
  int chosen;            /* 1 once a search or a profiling step has run */
} sieve_dynplan_info;

sieve_status sieve_dynplan_info_get(sieve_dynplan *d, sieve_dynplan_info *out);
/*
** The search's selection: blocks[((b H + h) q_blocks + qb) k_blocks + kb]
** is 1 where (input b, head h) keeps key block kb for query block qb, else
** 0; topk[b H + h] the blocks each row keeps by mass (its head tier's
** count; the text sink comes on top); recall[b H + h] the head's recall at
** the base sparsity, measured at the first search of the run (-1 before it
** or without tiers). Sizes from sieve_dynplan_info_get: blocks holds batch
** x heads x q_blocks x k_blocks bytes, topk and recall batch x heads
** entries. Before the first search (chosen 0) asking for blocks is SIEVE_ERR_ARG.
** Any output may be NULL. Waits for the GPU.
*/
sieve_status sieve_dynplan_blocks(sieve_dynplan *d, uint8_t *blocks, int32_t *topk, double *recall);
/*
** The last profiling: klass[b H + h] each head's class; err[(b H + h)
** classes + c] its error under class c (the squared distance to full
** attention over the sampled rows, over the full output's squared norm);
** rows[samples] the sampled query tokens in model order. Sizes from
** sieve_dynplan_info_get (batch x heads, times classes for err). Before
** the first profiling (chosen 0) klass holds the pattern's own classes and
** err and rows zeros. Any may be NULL.
*/
sieve_status sieve_dynplan_classes(sieve_dynplan *d, int32_t *klass, double *err, int32_t *rows);
/* Class c's name ("spatial", "3x3x3", ...); NULL past the last or for a search. */
const char *sieve_dynplan_class_name(const sieve_dynplan *d, int c);

/* --------------------------------------------------- sequence parallelism */

/*
** Sequence parallelism splits one attention call over ranks. Ulysses gives
** each rank all tokens of a slice of the heads; ring attention gives each
** rank a chunk of the queries and passes chunks of the keys around, the
** partial outputs merged by their LSE.
**
** A rank holding global heads [h0, h0 + n) makes its plans (static or
** dynamic) from sieve_pattern_heads(p, h0) on a shape of n heads: local
** head i then gets the class and mask p gives head h0 + i, and a dynamic
** plan keeps its per-head choice for those heads only. A copy for h0 a
** multiple of the pattern's head period, from a pattern whose masks do not
** read the head, has p's IR: its plans hit the same cached kernels.
*/
sieve_status sieve_pattern_heads(sieve_ctx *ctx, const sieve_pattern *p, int head0,
                                 sieve_pattern **out);

/*
** A chunk pair: query tokens [q_begin, q_end) against key tokens
** [k_begin, k_end) of the whole sequence (an end of 0 means the sequence's
** end). A chunk must start and end on the pattern's block boundaries
** (block.q for queries, block.k for keys; the last may end at the
** sequence's end), every head class must have the identity layout (block
** rows are then token ranges), and the selection must be static; anything
** else is SIEVE_ERR_ARG with the reason.
*/
typedef struct sieve_chunk {
  int64_t q_begin, q_end;
  int64_t k_begin, k_end;
} sieve_chunk;

/*
** The tables of a chunk pair: the whole sequence's tables for `shape` (the
** mask evaluated at global token indices), cut to the chunk's query blocks
** and to the key blocks inside the key chunk. Views number both from the
** chunk's start: row r is query block q_begin / block.q + r, key block j
** is key block k_begin / block.k + j. A view's density is, for a chunk,
** the fraction of block pairs visited (token counts are not kept).
** Plans still run whole sequences: the kernel reads query positions from
** 0, so a chunk pair runs on the host reference (sieve_reference) until
** the kernel takes token offsets.
*/
sieve_status sieve_tables_build_chunk(sieve_ctx *ctx, const sieve_pattern *p,
                                      const sieve_shape *shape, int step, int layer,
                                      const sieve_chunk *chunk, sieve_tables **out);
/* Key blocks the tables visit, full and partial, summed over heads. A
** chunk pair with 0 has nothing to compute: skip it (its partial output is
** O = 0, LSE = -inf, which a merge by LSE ignores). */
int64_t sieve_tables_visits(const sieve_tables *t);

/*
** The float64 CPU reference for a chunk pair (NULL: the whole sequence) of
** every head of p, for checking a part against the whole. q is [B, H, Sq, D],
** k and v [B, H, Sk, D], o [B, H, Sq, D], lse [B, H, Sq] (natural log),
** contiguous, with Sq and Sk the chunk's token counts. The mask is
** evaluated at global token indices; with identity layouts only pairs in
** the chunk's tables count. Rows with no allowed key get O = 0 and
** LSE = -inf. scale <= 0 means 1/sqrt(head_dim). Every token pair is
** evaluated: for small shapes.
*/
sieve_status sieve_reference(sieve_ctx *ctx, const sieve_pattern *p, const sieve_shape *shape,
                             int step, int layer, const sieve_chunk *chunk, const double *q,
                             const double *k, const double *v, double scale, double *o,
                             double *lse);

#ifdef __cplusplus
}
#endif
#endif
