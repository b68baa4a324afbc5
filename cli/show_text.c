/*
** The text report of `sieve show`. Block counts of a table are per head;
** totals multiply them by the heads that share the table, since that is the
** work the kernel does.
*/
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cg_blocks.h"
#include "cli.h"
#include "lp.h"
#include "show.h"

/* ------------------------------------------------------- head ranges */

static void append(char *buf, size_t len, const char *item) {
  size_t used = strlen(buf);
  if (used + 1 < len) snprintf(buf + used, len - used, "%s%s", used ? ", " : "", item);
}

/* The last index of an arithmetic run of at least three starting at i, or i. */
static int run_end(const int *h, int n, int i) {
  if (i + 2 >= n) return i;
  int s = h[i + 1] - h[i], j = i + 1;
  while (j + 1 < n && h[j + 1] - h[j] == s) j++;
  return j - i >= 2 ? j : i;
}

/*
** Runs become "a-b" (step 1) or "a-b/s", so heads split by a period
** (alternating classes) read as one item instead of a dozen.
*/
static void compact(const int *h, int n, char *buf, size_t len) {
  char item[48];
  buf[0] = 0;
  for (int i = 0; i < n;) {
    int j = run_end(h, n, i), s = j > i ? h[i + 1] - h[i] : 0;
    if (j == i) snprintf(item, sizeof item, "%d", h[i]);
    else if (s == 1) snprintf(item, sizeof item, "%d-%d", h[i], h[j]);
    else snprintf(item, sizeof item, "%d-%d/%d", h[i], h[j], s);
    append(buf, len, item);
    i = j + 1;
  }
}

void show_heads(const sieve_tables *t, int heads, int table, char *buf, size_t len) {
  int *h = malloc(sizeof(int) * (size_t)(heads > 0 ? heads : 1));
  int n = 0;
  buf[0] = 0;
  if (!h) return;
  for (int i = 0; i < heads; i++)
    if (sieve_tables_head_table(t, i) == table) h[n++] = i;
  compact(h, n, buf, len);
  free(h);
}

/* ------------------------------------------------------------ report */

static const char *or_dash(const char *s) { return s && *s ? s : "-"; }

static void header(const show_input *in, const sieve_tables_info *inf) {
  int64_t pairs = (int64_t)inf->q_blocks * inf->k_blocks;
  printf("pattern   %s  (%s)  ir %016" PRIx64 "\n", or_dash(sieve_pattern_name(in->pattern)),
         in->path, sieve_pattern_hash(in->pattern));
  printf("shape     %s\n", in->shape_desc);
  printf("tokens    %" PRId64 ", step %d, layer %d\n", sieve_shape_tokens(in->shape), in->step,
         in->layer);
  printf("blocks    %d query x %d key blocks of %dx%d tokens = %" PRId64 " pairs per head\n",
         inf->q_blocks, inf->k_blocks, inf->block_q, inf->block_k, pairs);
  const cg_pattern *cp = lp_pattern_ir(in->pattern);
  if (cp->dense_steps || cp->dense_layers)
    printf("schedule  dense attention at steps below %d and layers below %d: %s\n", cp->dense_steps,
           cp->dense_layers,
           cg_pattern_dense_at(cp, in->step, in->layer) ? "this step runs dense, the tables below wait"
                                                        : "this step runs the tables below");
  char sel[512];
  if (cli_pattern_selection(in->pattern, sel, sizeof sel))
    printf("selection %s;\n          the tables below are the allowed set it chooses from\n", sel);
}

static const char *mem_str(int64_t b, char *buf, size_t n) {
  if (b < 10 * 1024) snprintf(buf, n, "%lld B", (long long)b);
  else if (b < 1048576) snprintf(buf, n, "%.1f KiB", b / 1024.0);
  else snprintf(buf, n, "%.1f MiB", b / 1048576.0);
  return buf;
}

/* The head class of table i of t: that of its first head. */
static int cls_of(const show_input *in, const sieve_tables *t, int i) {
  const cg_pattern *cp = lp_pattern_ir(in->pattern);
  for (int h = 0; h < in->shape->heads; h++)
    if (sieve_tables_head_table(t, h) == i) return cp->head_class[h % cp->period];
  return 0;
}

/* One row per distinct table of t; adds its blocks, times its heads, to
** tot[3]. */
static int table_rows(const show_input *in, const sieve_tables *t, const sieve_tables_info *inf,
                      int64_t tot[3]) {
  char heads[512];
  int est = 0;
  printf("\ntable  class        layout        density        full     partial       empty     memory  heads\n");
  for (int i = 0; i < inf->tables; i++) {
    sieve_table_view v;
    if (sieve_tables_view(t, i, &v) != SIEVE_OK)
      return cli_fail(CLI_FAIL, "block tables: no view of table %d", i);
    int nh = 0;
    for (int h = 0; h < inf->heads; h++) nh += sieve_tables_head_table(t, h) == i;
    tot[0] += v.full_blocks * nh;
    tot[1] += v.partial_blocks * nh;
    tot[2] += v.empty_blocks * nh;
    show_heads(t, inf->heads, i, heads, sizeof heads);
    /* "~" marks a density estimated from sampled query tokens. */
    char dens[32];
    snprintf(dens, sizeof dens, "%7.2f%%", 100 * v.density);
    if (v.estimated_blocks) {
      char *sp = strrchr(dens, ' ');
      if (sp) *sp = '~';
      est = 1;
    }
    char mem[32];
    printf("%5d  %-12s %-12s %s  %10" PRId64 "  %10" PRId64 "  %10" PRId64 "  %9s  %s\n", i,
           or_dash(v.klass), or_dash(v.layout), dens, v.full_blocks, v.partial_blocks,
           v.empty_blocks, mem_str(v.bytes, mem, sizeof mem), heads);
  }
  if (est) printf("       ~ estimated from sampled query tokens; the block classes are exact\n");
  uint32_t cost = cg_bits_classes(lp_pattern_ir(in->pattern), in->shape, CG_BITS_COST);
  for (int i = 0; i < inf->tables; i++) {
    sieve_table_view v;
    char a[32], b[32];
    if (sieve_tables_view(t, i, &v) != SIEVE_OK || !v.partial_blocks) continue;
    if (v.bitmask)
      printf("partial %d  bitmasks: %" PRId64 " distinct of %dx%d bits, %s (table %s); the predicate is %d ops a pair\n",
             i, v.bitmasks, inf->block_q, inf->block_k, mem_str(v.bitmask_bytes, a, sizeof a),
             mem_str(v.bytes - v.bitmask_bytes, b, sizeof b), v.pair_ops);
    else
      printf("partial %d  predicate, %d ops a pair%s\n", i, v.pair_ops,
 cost >> cls_of(in, t, i) & 1 ? " (bitmasks by cost without SIEVE_PARTIAL=predicate)" : "");
  }
  for (int i = 0; i < inf->tables; i++) {
    sieve_table_view v;
    if (sieve_tables_view(t, i, &v) == SIEVE_OK && v.layout_choice)
      printf("layout %d  auto, by visited block area: %s\n", i, v.layout_choice);
  }
  return CLI_OK;
}

/* The smallest p with head h using the table of head h mod p, for all h. */
static int head_period(const sieve_tables *t, int heads) {
  for (int p = 1; p < heads; p++) {
    int h = p;
    while (h < heads && sieve_tables_head_table(t, h) == sieve_tables_head_table(t, h % p)) h++;
    if (h == heads) return p;
  }
  return heads;
}

static double table_density(const sieve_tables *t, int tab) {
  sieve_table_view v;
  return sieve_tables_view(t, tab, &v) == SIEVE_OK ? v.density : 0;
}

/*
** Runs of consecutive heads with one table, wrapped to fit a terminal.
** Heads that repeat with a period (alternating classes) show one period.
*/
static void head_densities(const show_input *in, const sieve_tables_info *inf) {
  int col = 0, n = head_period(in->tables, inf->heads);
  if (n == 1) n = inf->heads; /* one run covers them all */
  if (n < inf->heads)
    printf("\ndensity per head (repeats every %d heads):\n", n);
  else
    printf("\ndensity per head:\n");
  for (int h = 0; h < n;) {
    int tab = sieve_tables_head_table(in->tables, h), e = h;
    while (e + 1 < n && sieve_tables_head_table(in->tables, e + 1) == tab) e++;
    double d = 100 * table_density(in->tables, tab);
    char item[64];
    int w = e > h ? snprintf(item, sizeof item, "%d-%d %.2f%%", h, e, d)
                  : snprintf(item, sizeof item, "%d %.2f%%", h, d);
    if (col && col + w + 3 > 78) {
      printf("\n");
      col = 0;
    }
    col += printf("%s%s", col ? "   " : "  ", item);
    h = e + 1;
  }
  printf("\n");
}

/* Every head covers the same token pairs, so the mean of head densities
** is the density over all heads. */
static double mean_density(const show_input *in, const sieve_tables_info *inf) {
  double sum = 0;
  for (int h = 0; h < inf->heads; h++)
    sum += table_density(in->tables, sieve_tables_head_table(in->tables, h));
  return inf->heads ? sum / inf->heads : 0;
}

/* The blocks all heads visit and the memory: what the kernel reads when
** `at` names these tables' blocks as its own, else these tables'. */
static void blocks_memory(const sieve_tables_info *inf, const int64_t tot[3], const char *at) {
  int64_t all = tot[0] + tot[1] + tot[2];
  double visited = all ? 100.0 * (double)(tot[0] + tot[1]) / (double)all : 0;
  printf("          blocks, all heads: %" PRId64 " full, %" PRId64 " partial, %" PRId64
         " empty (%s %.2f%%)\n", tot[0], tot[1], tot[2], at, visited);
  char a[32], b[32], c[32];
  printf("memory    tables %s on the GPU (bitmasks %s of it), bound %s (SIEVE_TABLES_MAX_MB)\n",
         mem_str(inf->bytes, a, sizeof a), mem_str(inf->bitmask_bytes, c, sizeof c), mem_str(inf->max_bytes, b, sizeof b));
}

static void totals(const show_input *in, const sieve_tables_info *inf, const int64_t tot[3],
                   double density) {
  printf("\ntotal     density %.2f%% over %d heads; %d distinct table%s\n", 100 * density,
         inf->heads, inf->tables, inf->tables == 1 ? "" : "s");
  blocks_memory(inf, tot, in->kernel && in->kernel->tables ? "visited at these blocks" : "kernel visits");
  printf("time      tables %.1f ms, script %.1f ms\n", inf->build_ms, in->load_ms);
  printf("classify  interval test: %" PRId64 " full, %" PRId64 " empty, %" PRId64 " undecided\n",
         inf->interval_full, inf->interval_empty, inf->interval_undecided);
  printf("          refined undecided: %" PRId64 " full, %" PRId64 " empty, %" PRId64
         " partial\n", inf->refined_full, inf->refined_empty, inf->refined_partial);
}

static int over_bound(const sieve_tables_info *inf, const char *whose) {
  if (inf->bytes <= inf->max_bytes) return CLI_OK;
  return cli_fail(CLI_FAIL, "%s need %.1f MiB, over the bound of %.1f MiB (SIEVE_TABLES_MAX_MB): "
                  "a plan would fail with SIEVE_ERR_LIMIT", whose, inf->bytes / 1048576.0, inf->max_bytes / 1048576.0);
}

/* The kernel's own tables, where a plan builds them at other blocks. */
static int kernel_section(const show_input *in) {
  const show_kernel *k = in->kernel;
  if (!k) return CLI_OK;
  if (k->folded) {
    printf("\nkernel    %s: the mask holds on every pair at this shape and every step, so plans\n"
           "          run the dense kernel and build no tables\n", k->desc);
    return CLI_OK;
  }
  if (!k->tables) {
    printf("\nkernel    %s: reads the tables above\n", k->desc);
    return CLI_OK;
  }
  sieve_tables_info inf;
  int64_t tot[3] = {0, 0, 0};
  sieve_tables_info_get(k->tables, &inf);
  sieve_tables_info own;
  sieve_tables_info_get(in->tables, &own);
  char why[96];
  if (inf.block_k == own.block_k && inf.block_q % own.block_q == 0)
    snprintf(why, sizeof why, "%d-token query blocks merged %d to a row", own.block_q, inf.block_q / own.block_q);
  else
    snprintf(why, sizeof why, "blocks of its tile");
  printf("\nkernel    %s: tables of %dx%d tokens (%s),\n"
         "          %d query x %d key blocks\n",
         k->desc, inf.block_q, inf.block_k, why, inf.q_blocks, inf.k_blocks);
  if (table_rows(in, k->tables, &inf, tot)) return CLI_FAIL;
  blocks_memory(&inf, tot, "kernel visits");
  printf("time      tables %.1f ms\n", inf.build_ms);
  return over_bound(&inf, "the kernel's block tables");
}

int show_text(const show_input *in) {
  sieve_tables_info inf;
  int64_t tot[3] = {0, 0, 0};
  sieve_tables_info_get(in->tables, &inf);
  header(in, &inf);
  if (table_rows(in, in->tables, &inf, tot)) return CLI_FAIL;
  head_densities(in, &inf);
  totals(in, &inf, tot, mean_density(in, &inf));
  int rc = over_bound(&inf, "block tables");
  return rc ? rc : kernel_section(in);
}
