-- sta: Sliding Tile Attention (STA, arXiv 2502.04507). The video is cut
-- into 3-D tiles of tile_t x tile_y x tile_x tokens, laid out so that each
-- tile is contiguous; a query attends to the keys whose tile lies within
-- win_t, win_y, win_x tiles of the window centre on each axis: the query's
-- own tile, clamped so that the window stays inside the video (queries at
-- the edges see as many tiles as any other). With the tiles lined up with
-- the blocks every block pair is either inside or outside the window.
--
-- Follows hao-ai-lab/FastVideo at 2f3d4074064e4d86f99dc784ebbaa296e6f5925f:
--   fastvideo-kernel/tests/support_flex_sta.py  generate_sta_mask: kernel size
--     in tiles, centre = clamp(q_tile, k // 2, tiles - 1 - k // 2), video to
--     video within k // 2 of the centre, video to text and text to all
--   fastvideo/v1/attention/backends/sliding_tile_attn.py (at cbb4264b7c46):
--     tiles (6, 8, 8), the text length from the prompt's attention mask
-- HunyuanVideo's setting: tiles (6, 8, 8), a window of (3, 3, 3) tiles, i.e.
-- win = 1 on each axis. The text padding past the prompt's real length is
-- masked through the kernel's text-length argument.
--
-- What differs: STA takes a window per (step, layer, head) from a mask-search
-- file (the L2 error of each candidate against full attention) and keeps the
-- first steps dense; here the window is one for all heads and the dense
-- steps a schedule (dense_steps = 12, from the comparison of 2026-12-03; the
-- search is not built). A ragged last tile counts as a tile (STA's grids
-- divide evenly). clamp = false gives sieve's earlier centred window.
--
-- Params:
--   tile_t, tile_y, tile_x (6, 8, 8) tile size in frames, rows, columns.
--   win_t, win_y, win_x    (1, 1, 1) tiles on each side of the centre.
--   clamp                  (true)    clamp the centre at the edges (STA).
--   dense_steps            (12)      leading denoising steps run dense.
--   text                   (true)    text tokens attend to, and are attended
--                                    by, every token (STA keeps text dense).

local param = sieve.params {
  tile_t = 6, tile_y = 8, tile_x = 8, win_t = 1, win_y = 1, win_x = 1, clamp = true,
  dense_steps = 12, text = true,
}
for _, n in ipairs { "tile_t", "tile_y", "tile_x" } do sieve.expect(n, param[n] >= 1, "must be at least 1") end
for _, n in ipairs { "win_t", "win_y", "win_x", "dense_steps" } do sieve.expect(n, param[n] >= 0, "must be 0 or more") end

local tile = { param.tile_t, param.tile_y, param.tile_x }
local mask = sieve.tile_window(param.win_t, param.win_y, param.win_x, tile, { clamp = param.clamp })
if param.text then
  mask = sieve.union(mask, sieve.text_rows(), sieve.text_cols())
end

return sieve.pattern {
  name = "sta",
  block = { q = 128, k = 128 },
  layout = sieve.layout.tile(tile),
  mask = mask,
  schedule = { dense_steps = param.dense_steps },
}
