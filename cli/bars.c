/*
** Horizontal bar charts for `sieve bench --png`: one bar per kernel, its
** label on the left, its figures after the bar, sieve's own bars dark.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "font.h"
#include "png.h"

#define W 1200
#define MARGIN 16
#define SCALE 2
#define ROW_H 30
#define BAR_H 20
#define MAX_LABEL 36      /* characters of a label that are drawn */
#define TEXT_CHARS 32     /* room for the figures after a bar ("17.475 ms 377 TFLOP/s 1.00x") */

static const uint8_t white[3] = {255, 255, 255}, ink[3] = {0, 0, 0}, mine[3] = {24, 32, 72},
                     theirs[3] = {160, 160, 160};

static void box(uint8_t *rgb, int h, int x, int y, int w, int bh, const uint8_t c[3]) {
  for (int j = y; j < y + bh && j < h; j++)
    for (int i = x; i < x + w && i < W; i++) memcpy(rgb + 3 * ((size_t)j * W + i), c, 3);
}

static int label_width(const cli_bar *bars, int n) {
  int most = 0;
  for (int i = 0; i < n; i++) {
    int l = (int)strlen(bars[i].label);
    if (l > most) most = l;
  }
  return (most < MAX_LABEL ? most : MAX_LABEL) * FONT_W * SCALE;
}

static void draw(uint8_t *rgb, int h, const char *title, const cli_bar *bars, int n) {
  int tscale = (int)strlen(title) * FONT_W * SCALE <= W - 2 * MARGIN ? SCALE : 1;
  font_draw(rgb, W, h, MARGIN, MARGIN, W - MARGIN, tscale, title, ink);
  int x0 = MARGIN + label_width(bars, n) + 12;
  int room = W - x0 - MARGIN - TEXT_CHARS * FONT_W * SCALE;
  double top = 0;
  for (int i = 0; i < n; i++)
    if (bars[i].value > top) top = bars[i].value;
  for (int i = 0; i < n; i++) {
    int y = MARGIN + FONT_H * SCALE + 12 + i * ROW_H;
    int len = top > 0 ? (int)(room * bars[i].value / top + 0.5) : 0;
    font_draw(rgb, W, h, MARGIN, y + (BAR_H - 7 * SCALE) / 2, x0 - 12, SCALE, bars[i].label, ink);
    box(rgb, h, x0, y, len > 1 ? len : 1, BAR_H, bars[i].mine ? mine : theirs);
    if (bars[i].text)
      font_draw(rgb, W, h, x0 + len + 8, y + (BAR_H - 7 * SCALE) / 2, W - MARGIN, SCALE,
                bars[i].text, ink);
  }
}

int cli_bars_png(const char *path, const char *title, const cli_bar *bars, int n) {
  int h = MARGIN + FONT_H * SCALE + 12 + n * ROW_H + MARGIN;
  uint8_t *rgb = malloc((size_t)W * (size_t)h * 3), *png = NULL;
  size_t len = 0;
  if (!rgb) return cli_fail(CLI_FAIL, "no memory for the picture");
  for (size_t i = 0; i < (size_t)W * (size_t)h; i++) memcpy(rgb + 3 * i, white, 3);
  draw(rgb, h, title, bars, n);
  int rc = png_encode(rgb, W, h, 3, &png, &len) ? cli_fail(CLI_FAIL, "PNG encoding failed")
                                                : cli_write_file(path, png, len);
  free(rgb);
  free(png);
  return rc;
}
