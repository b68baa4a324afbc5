/*
** A minimal PNG encoder: 8-bit greyscale or RGB, no interlacing, one IDAT.
*/
#ifndef CLI_PNG_H
#define CLI_PNG_H

#include <stddef.h>
#include <stdint.h>

/* Encodes w x h pixels (rows top to bottom, `channels` bytes each: 1 grey,
** 3 RGB) into *out (malloc'd, *len bytes). Returns 0, or -1 for bad sizes
** or no memory (then *out is NULL). */
int png_encode(const uint8_t *pix, int w, int h, int channels, uint8_t **out, size_t *len);

#endif
