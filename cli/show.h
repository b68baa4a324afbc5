/*
** `sieve show`: the text report and the picture of a pattern's block tables.
*/
#ifndef CLI_SHOW_H
#define CLI_SHOW_H

#include <stddef.h>

#include "cg_ptx.h"
#include "sieve.h"

/* The tables the default kernel reads (show_kernel.c): NULL where they
** are the pattern's own. */
typedef struct show_kernel {
  sieve_tables *tables;
  char desc[96];           /* arch and config */
  int folded;              /* the mask is true at the shape: plans run the dense kernel */
} show_kernel;

typedef struct show_input {
  const sieve_pattern *pattern;
  const char *path;        /* the script file */
  const char *shape_desc;  /* one line */
  const sieve_shape *shape;
  const sieve_tables *tables;
  int step, layer;
  double load_ms;          /* running the script */
  const show_kernel *kernel;
} show_input;

/* Builds out->tables for the default kernel on arch where they differ
** from the pattern's. Returns an exit code. */
int show_kernel_tables(const sieve_pattern *p, const sieve_shape *shape, int step, int layer,
                       cg_arch arch, show_kernel *out);
/* Prints the report on stdout. Returns an exit code. */
int show_text(const show_input *in);
/* Draws one panel per distinct table and writes the PNG. Returns an exit code. */
int show_png(const show_input *in, const char *path);

/* The heads that use `table`, compacted: "0-11", "0-22/2", "3, 7, 9". */
void show_heads(const sieve_tables *t, int heads, int table, char *buf, size_t len);

#endif
