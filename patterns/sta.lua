-- sta: Sliding Tile Attention (STA, arXiv 2502.04507). The video is cut
-- into 3-D tiles of tile_t x tile_y x tile_x tokens, laid out so that each
-- tile is contiguous; a query attends to the tiles within win_t, win_y,
-- win_x tiles of its own tile. Because the window moves tile by tile, every
-- block pair is either fully inside or fully outside the window (no mixed
-- blocks) when the tiles line up with the blocks.
--
-- STA's HunyuanVideo setting is tiles of (6, 8, 8) and a window of (3, 3, 3)
-- tiles, i.e. win = 1 on each axis. Near the borders STA shifts the window
-- to stay inside the video; this script keeps it centred (the mask has no
-- access to the video's size), so border queries see fewer tiles.
--
-- Params:
--   tile_t, tile_y, tile_x (6, 8, 8) tile size in frames, rows, columns.
--   win_t, win_y, win_x    (1, 1, 1) tiles on each side of the query's tile.
--   text                   (true)    text tokens attend to, and are attended
--                                    by, every token (STA keeps text dense).

local param = sieve.params {
  tile_t = 6, tile_y = 8, tile_x = 8, win_t = 1, win_y = 1, win_x = 1, text = true,
}

local tile = { param.tile_t, param.tile_y, param.tile_x }
local mask = sieve.tile_window(param.win_t, param.win_y, param.win_x, tile)
if param.text then
  mask = sieve.union(mask, sieve.text_rows(), sieve.text_cols())
end

return sieve.pattern {
  name = "sta",
  block = { q = 128, k = 128 },
  layout = sieve.layout.tile(tile),
  mask = mask,
}
