/*
** `sieve show`: the text report and the picture of a pattern's block tables.
*/
#ifndef CLI_SHOW_H
#define CLI_SHOW_H

#include <stddef.h>

#include "sieve.h"

typedef struct show_input {
  const sieve_pattern *pattern;
  const char *path;        /* the script file */
  const char *shape_desc;  /* one line */
  const sieve_shape *shape;
  const sieve_tables *tables;
  int step, layer;
  double load_ms;          /* running the script */
} show_input;

/* Prints the report on stdout. Returns an exit code. */
int show_text(const show_input *in);
/* Draws one panel per distinct table and writes the PNG. Returns an exit code. */
int show_png(const show_input *in, const char *path);

/* The heads that use `table`, compacted: "0-11", "0-22/2", "3, 7, 9". */
void show_heads(const sieve_tables *t, int heads, int table, char *buf, size_t len);

#endif
