/*
** A 5x7 bitmap font for the titles in pictures: digits, letters (drawn as
** capitals) and the punctuation that numbers and names need.
*/
#ifndef CLI_FONT_H
#define CLI_FONT_H

#include <stdint.h>

#define FONT_W 6 /* advance per character, at scale 1 */
#define FONT_H 8 /* line height, at scale 1 */

/* Draws s into an RGB image of width w and height h at (x, y), clipped to
** x < x_end (and to the image). Returns the x after the last character;
** with rgb NULL it only measures. */
int font_draw(uint8_t *rgb, int w, int h, int x, int y, int x_end, int scale, const char *s,
              const uint8_t color[3]);

#endif
