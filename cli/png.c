/*
** PNG is a signature, then chunks: length (big endian), type, data, and a
** CRC-32 over type and data. IHDR gives the size and pixel format, IDAT the
** zlib stream of the scanlines (each preceded by its filter byte), IEND ends.
*/
#include "png.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static uint8_t *put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
  return p + 4;
}

static uint8_t *chunk(uint8_t *p, const char type[4], const uint8_t *data, size_t n) {
  p = put32(p, (uint32_t)n);
  memcpy(p, type, 4);
  if (n) memcpy(p + 4, data, n);
  uLong crc = crc32(crc32(0, Z_NULL, 0), p, (uInt)(n + 4));
  return put32(p + 4 + n, (uint32_t)crc);
}

/*
** Filter "Up" (2) stores each byte minus the one above it: the rows of a
** block-mask picture repeat, so most become zeros and deflate well.
*/
static uint8_t *scanlines(const uint8_t *pix, int w, int h, int channels, size_t *n) {
  size_t row = (size_t)w * (size_t)channels;
  uint8_t *raw = malloc((row + 1) * (size_t)h);
  if (!raw) return NULL;
  for (size_t y = 0; y < (size_t)h; y++) {
    uint8_t *dst = raw + y * (row + 1);
    const uint8_t *cur = pix + y * row, *up = y ? cur - row : NULL;
    dst[0] = 2;
    for (size_t i = 0; i < row; i++) dst[1 + i] = (uint8_t)(cur[i] - (up ? up[i] : 0));
  }
  *n = (row + 1) * (size_t)h;
  return raw;
}

int png_encode(const uint8_t *pix, int w, int h, int channels, uint8_t **out, size_t *len) {
  static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  *out = NULL;
  *len = 0;
  /* Bounded so that every chunk length fits PNG's 31 bits. */
  if (w <= 0 || h <= 0 || (channels != 1 && channels != 3) ||
      (uint64_t)w * (uint64_t)h * (uint64_t)channels > (1u << 30))
    return -1;
  size_t nraw;
  uint8_t *raw = scanlines(pix, w, h, channels, &nraw);
  if (!raw) return -1;
  uLongf nz = compressBound((uLong)nraw);
  uint8_t *buf = malloc(8 + 25 + 12 + nz + 12);
  uint8_t *z = malloc(nz);
  if (!buf || !z || compress2(z, &nz, raw, (uLong)nraw, 6) != Z_OK) {
    free(raw);
    free(buf);
    free(z);
    return -1;
  }
  uint8_t ihdr[13];
  put32(put32(ihdr, (uint32_t)w), (uint32_t)h);
  ihdr[8] = 8;                        /* bits per channel */
  ihdr[9] = channels == 3 ? 2 : 0;    /* colour type: RGB or grey */
  ihdr[10] = ihdr[11] = ihdr[12] = 0; /* deflate, adaptive filters, no interlace */
  memcpy(buf, sig, 8);
  uint8_t *p = chunk(buf + 8, "IHDR", ihdr, sizeof ihdr);
  p = chunk(p, "IDAT", z, nz);
  p = chunk(p, "IEND", NULL, 0);
  free(raw);
  free(z);
  *out = buf;
  *len = (size_t)(p - buf);
  return 0;
}
