/*
** The CLI's PNG encoder, checked by decoding what it wrote: chunk framing and
** CRCs, the IHDR fields, and every pixel after inflating and unfiltering the
** IDAT stream (all five PNG filter types, so the check does not depend on
** which filter the encoder picks).
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <zlib.h>

#include "png.h"

static uint32_t get32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

typedef struct decoded {
  int w, h, channels;
  uint8_t *pix;
} decoded;

static int paeth(int a, int b, int c) {
  int p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

static int predict(int filter, int a, int b, int c) {
  switch (filter) {
  case 1: return a;
  case 2: return b;
  case 3: return (a + b) / 2;
  case 4: return paeth(a, b, c);
  }
  return 0;
}

/* a: the byte to the left, b: above, c: above-left (0 outside the image). */
static void unfilter(const uint8_t *raw, decoded *d) {
  size_t row = (size_t)d->w * d->channels, bpp = (size_t)d->channels;
  for (size_t y = 0; y < (size_t)d->h; y++) {
    const uint8_t *src = raw + y * (row + 1);
    uint8_t *cur = d->pix + y * row, *up = y ? cur - row : NULL;
    assert_in_range(src[0], 0, 4);
    for (size_t i = 0; i < row; i++) {
      int a = i >= bpp ? cur[i - bpp] : 0, b = up ? up[i] : 0, c = up && i >= bpp ? up[i - bpp] : 0;
      cur[i] = (uint8_t)(src[1 + i] + predict(src[0], a, b, c));
    }
  }
}

/* Walks the chunks, checking each CRC; collects IHDR and the IDAT data. */
static void decode(const uint8_t *png, size_t len, decoded *d) {
  static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  assert_true(len > 8);
  assert_memory_equal(png, sig, 8);
  uint8_t *idat = NULL;
  size_t nidat = 0, at = 8;
  int seen_end = 0;
  while (at + 12 <= len && !seen_end) {
    uint32_t n = get32(png + at);
    const uint8_t *type = png + at + 4, *data = type + 4;
    assert_true(at + 12 + n <= len);
    assert_int_equal(get32(data + n), crc32(crc32(0, Z_NULL, 0), type, n + 4));
    if (!memcmp(type, "IHDR", 4)) {
      assert_int_equal(n, 13);
      d->w = (int)get32(data);
      d->h = (int)get32(data + 4);
      assert_int_equal(data[8], 8);
      d->channels = data[9] == 2 ? 3 : data[9] == 0 ? 1 : -1;
      assert_int_equal(data[10] | data[11] | data[12], 0);
    } else if (!memcmp(type, "IDAT", 4)) {
      idat = realloc(idat, nidat + n);
      memcpy(idat + nidat, data, n);
      nidat += n;
    } else {
      seen_end = !memcmp(type, "IEND", 4);
      assert_true(seen_end);
    }
    at += 12 + n;
  }
  assert_true(seen_end);
  assert_int_equal(at, len);
  uLongf nraw = (uLongf)((size_t)d->w * d->channels + 1) * d->h;
  uint8_t *raw = malloc(nraw);
  assert_int_equal(uncompress(raw, &nraw, idat, nidat), Z_OK);
  assert_int_equal(nraw, ((size_t)d->w * d->channels + 1) * d->h);
  d->pix = malloc((size_t)d->w * d->h * d->channels);
  unfilter(raw, d);
  free(raw);
  free(idat);
}

static void roundtrip(const uint8_t *pix, int w, int h, int channels) {
  uint8_t *png;
  size_t len;
  decoded d = {0};
  assert_int_equal(png_encode(pix, w, h, channels, &png, &len), 0);
  decode(png, len, &d);
  assert_int_equal(d.w, w);
  assert_int_equal(d.h, h);
  assert_int_equal(d.channels, channels);
  assert_memory_equal(d.pix, pix, (size_t)w * h * channels);
  free(d.pix);
  free(png);
}

static void rgb_pixels_survive(void **st) {
  const int w = 7, h = 5;
  uint8_t pix[7 * 5 * 3];
  for (int i = 0; i < w * h * 3; i++) pix[i] = (uint8_t)(i * 37 + 11);
  roundtrip(pix, w, h, 3);
}

static void grey_and_single_pixel(void **st) {
  uint8_t one = 200, grey[16 * 3];
  roundtrip(&one, 1, 1, 1);
  for (int i = 0; i < 48; i++) grey[i] = (uint8_t)(255 - i * 5);
  roundtrip(grey, 16, 3, 1);
}

/* A block-mask-like picture: flat runs and repeated rows, plus noise. */
static void large_picture(void **st) {
  const int w = 613, h = 411;
  uint8_t *pix = malloc((size_t)w * h * 3);
  uint32_t r = 12345;
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w * 3; x++) {
      r = r * 1103515245u + 12345u;
      uint8_t noise = (uint8_t)(r >> 16);
      pix[(size_t)y * w * 3 + x] = abs(x / 3 - y) < 40 ? 30 : y % 50 == 0 ? noise : 255;
    }
  roundtrip(pix, w, h, 3);
  free(pix);
}

static void bad_sizes_fail_cleanly(void **st) {
  uint8_t px[3] = {0}, *png = (uint8_t *)1;
  size_t len = 99;
  assert_int_equal(png_encode(px, 0, 1, 3, &png, &len), -1);
  assert_null(png);
  assert_int_equal(len, 0);
  assert_int_equal(png_encode(px, 1, -1, 3, &png, &len), -1);
  assert_int_equal(png_encode(px, 1, 1, 2, &png, &len), -1);
  assert_int_equal(png_encode(px, 1 << 20, 1 << 20, 3, &png, &len), -1);
}

int main(void) {
  const struct CMUnitTest t[] = {
    cmocka_unit_test(rgb_pixels_survive),
    cmocka_unit_test(grey_and_single_pixel),
    cmocka_unit_test(large_picture),
    cmocka_unit_test(bad_sizes_fail_cleanly),
  };
  return cmocka_run_group_tests(t, NULL, NULL);
}
