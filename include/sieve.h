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

/* ----------------------------------------------------------- block tables */

typedef struct sieve_tables sieve_tables;

/*
** Per-head block tables for one shape at one (step, layer): for each query
** block, the key blocks that are full (mask true on every token pair) and
** partial (mixed), in CSR form. Heads whose mask and layout coincide share
** one table.
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
} sieve_tables_info;

void sieve_tables_info_get(const sieve_tables *t, sieve_tables_info *out);
int sieve_tables_head_table(const sieve_tables *t, int head);

typedef struct sieve_table_view {
  int q_blocks;
  const int32_t *full_ptr, *full_idx;  /* CSR: row qb is [ptr[qb], ptr[qb+1]) */
  const int32_t *part_ptr, *part_idx;
  int64_t full_blocks, partial_blocks, empty_blocks;
  double density;      /* allowed token pairs / all token pairs */
  const char *layout;  /* the head class's layout, e.g. "identity" */
  const char *klass;   /* the head class's name */
} sieve_table_view;

sieve_status sieve_tables_view(const sieve_tables *t, int table,
                               sieve_table_view *out);

#ifdef __cplusplus
}
#endif
#endif
