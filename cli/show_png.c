/*
** The picture of `sieve show --png`: one panel per distinct table, query
** blocks down, key blocks across, in the table's layout order. Large grids
** are shrunk so a pixel covers several blocks and shows the strongest class
** among them (full over partial over empty: a kept block must never vanish
** from the picture); small grids are enlarged to stay visible.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "font.h"
#include "png.h"
#include "show.h"

enum { EMPTY, PARTIAL, FULL };

static const uint8_t colour[3][3] = {{255, 255, 255}, {128, 146, 196}, {24, 32, 72}};
static const uint8_t ink[3] = {0, 0, 0}, frame[3] = {150, 150, 150};

#define MARGIN 8
#define GAP 10
#define LINE_H (FONT_H + 2) /* title lines, at font scale 1 */
#define MAX_PANELS 64        /* keeps a picture of per-head tables drawable */

typedef struct canvas {
  uint8_t *rgb;
  int w, h;
} canvas;

typedef struct geom {
  int cols, rows;   /* panels per row, rows of panels */
  int down, up;     /* blocks per pixel, pixels per block */
  int pw, ph;       /* panel cells: ceil(blocks / down) */
  int scale;        /* font scale */
  int head_h;       /* strip above all panels */
  int title_h;      /* strip above each panel */
  int cell_w, cell_h;
} geom;

static void fill(canvas *c, int x, int y, int w, int h, const uint8_t rgb[3]) {
  if (!c->rgb) return;
  for (int j = y; j < y + h && j < c->h; j++)
    for (int i = x; i < x + w && i < c->w; i++) memcpy(c->rgb + 3 * ((size_t)j * c->w + i), rgb, 3);
}

/* --------------------------------------------------------- geometry */

static geom layout(const sieve_tables_info *inf, int n) {
  geom g;
  int big = inf->q_blocks > inf->k_blocks ? inf->q_blocks : inf->k_blocks;
  int limit = n <= 4 ? 1024 : 512;
  g.cols = n < 4 ? n : 4;
  g.rows = (n + g.cols - 1) / g.cols;
  g.down = (big + limit - 1) / limit;
  g.up = big < 600 ? 600 / big : 1;
  g.pw = (inf->k_blocks + g.down - 1) / g.down;
  g.ph = (inf->q_blocks + g.down - 1) / g.down;
  g.scale = g.pw * g.up >= 400 ? 2 : 1;
  g.title_h = 2 * LINE_H * g.scale + 4;
  g.head_h = FONT_H * g.scale + 8;
  g.cell_w = g.pw * g.up + 2;
  g.cell_h = g.title_h + g.ph * g.up + 2;
  return g;
}

/* ------------------------------------------------------------ panels */

/* Marks row qb's listed key blocks as `cls`, keeping the strongest class. */
static void mark(uint8_t *cells, const geom *g, int qb, int nk, const int32_t *ptr,
                 const int32_t *idx, uint8_t cls) {
  for (int32_t i = ptr[qb]; i < ptr[qb + 1]; i++) {
    if (idx[i] < 0 || idx[i] >= nk) continue;
    uint8_t *c = &cells[(size_t)(qb / g->down) * g->pw + idx[i] / g->down];
    if (*c < cls) *c = cls;
  }
}

static void draw_cells(canvas *c, const geom *g, const uint8_t *cells, int x0, int y0) {
  for (int y = 0; y < g->ph * g->up; y++)
    for (int x = 0; x < g->pw * g->up; x++)
      memcpy(c->rgb + 3 * ((size_t)(y0 + y) * c->w + x0 + x),
             colour[cells[(size_t)(y / g->up) * g->pw + x / g->up]], 3);
}

static void draw_title(canvas *c, const geom *g, const show_input *in, int tab,
                       const sieve_table_view *v, int x, int y) {
  char heads[256], line[320];
  int end = x + g->cell_w;
  show_heads(in->tables, in->shape->heads, tab, heads, sizeof heads);
  snprintf(line, sizeof line, "table %d  heads %s", tab, heads);
  font_draw(c->rgb, c->w, c->h, x, y, end, g->scale, line, ink);
  snprintf(line, sizeof line, "%s/%s  %.2f%%", v->klass ? v->klass : "-",
           v->layout ? v->layout : "-", 100 * v->density);
  font_draw(c->rgb, c->w, c->h, x, y + LINE_H * g->scale, end, g->scale, line, ink);
}

static int draw_panel(canvas *c, const geom *g, const show_input *in, int tab, uint8_t *cells) {
  sieve_table_view v;
  sieve_tables_info inf;
  sieve_tables_info_get(in->tables, &inf);
  if (sieve_tables_view(in->tables, tab, &v) != SIEVE_OK)
    return cli_fail(CLI_FAIL, "block tables: no view of table %d", tab);
  memset(cells, EMPTY, (size_t)g->pw * g->ph);
  for (int qb = 0; qb < v.q_blocks && qb < inf.q_blocks; qb++) {
    mark(cells, g, qb, inf.k_blocks, v.part_ptr, v.part_idx, PARTIAL);
    mark(cells, g, qb, inf.k_blocks, v.full_ptr, v.full_idx, FULL);
  }
  int x = MARGIN + (tab % g->cols) * (g->cell_w + GAP);
  int y = MARGIN + g->head_h + (tab / g->cols) * (g->cell_h + GAP);
  draw_title(c, g, in, tab, &v, x, y);
  fill(c, x, y + g->title_h, g->cell_w, g->cell_h - g->title_h, frame);
  draw_cells(c, g, cells, x + 1, y + g->title_h + 1);
  return CLI_OK;
}

/* The pattern and shape, then a legend of the three classes. Returns the
** x it ends at; with no pixels in c it only measures. */
static int draw_header(canvas *c, const geom *g, const show_input *in) {
  static const char *names[3] = {"empty", "partial", "full"};
  char line[320];
  int s = g->scale, sw = 7 * s;
  snprintf(line, sizeof line, "%s  %s  step %d layer %d   ",
           sieve_pattern_name(in->pattern) ? sieve_pattern_name(in->pattern) : "-",
           in->shape_desc, in->step, in->layer);
  int x = font_draw(c->rgb, c->w, c->h, MARGIN, MARGIN, c->w, s, line, ink);
  for (int k = FULL; k >= EMPTY; k--) {
    fill(c, x, MARGIN, sw, sw, frame);
    fill(c, x + 1, MARGIN + 1, sw - 2, sw - 2, colour[k]);
    x = font_draw(c->rgb, c->w, c->h, x + sw + 3 * s, MARGIN, c->w, s, names[k], ink);
    x += 2 * FONT_W * s;
  }
  return x;
}

/* --------------------------------------------------------- the file */

static int render(const show_input *in, const geom *g, canvas *c, int ntab) {
  uint8_t *cells = malloc((size_t)g->pw * g->ph);
  if (!cells) return cli_fail(CLI_FAIL, "out of memory drawing the picture");
  memset(c->rgb, 255, (size_t)c->w * c->h * 3);
  draw_header(c, g, in);
  int rc = CLI_OK;
  for (int t = 0; t < ntab && !rc; t++) rc = draw_panel(c, g, in, t, cells);
  free(cells);
  return rc;
}

int show_png(const show_input *in, const char *path) {
  sieve_tables_info inf;
  sieve_tables_info_get(in->tables, &inf);
  if (inf.tables < 1 || inf.q_blocks < 1 || inf.k_blocks < 1)
    return cli_fail(CLI_FAIL, "no block tables to draw");
  int n = inf.tables < MAX_PANELS ? inf.tables : MAX_PANELS;
  geom g = layout(&inf, n);
  canvas c;
  c.w = 2 * MARGIN + g.cols * g.cell_w + (g.cols - 1) * GAP;
  c.h = 2 * MARGIN + g.head_h + g.rows * g.cell_h + (g.rows - 1) * GAP;
  canvas measure = {NULL, 1 << 30, c.h};
  int head_w = draw_header(&measure, &g, in) + MARGIN;
  if (c.w < head_w) c.w = head_w;
  c.rgb = malloc((size_t)c.w * c.h * 3);
  if (!c.rgb) return cli_fail(CLI_FAIL, "out of memory drawing the picture");
  uint8_t *png = NULL;
  size_t len = 0;
  int rc = render(in, &g, &c, n);
  if (!rc && png_encode(c.rgb, c.w, c.h, 3, &png, &len))
    rc = cli_fail(CLI_FAIL, "cannot encode a %dx%d picture", c.w, c.h);
  if (!rc) rc = cli_write_file(path, png, len);
  if (!rc)
    printf("png       %s (%dx%d, %d panel%s%s)\n", path, c.w, c.h, n, n == 1 ? "" : "s",
           n < inf.tables ? ": the first tables only" : "");
  free(png);
  free(c.rgb);
  return rc;
}
