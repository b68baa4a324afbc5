-- dilated: a local 3-D window plus a dilated global grid, written as a
-- Lua predicate in raster order: a bench and test pattern for irregular
-- masks, not a shipped one.
--
-- A query attends to keys within wt frames, wy rows and wx columns of its
-- own position (a sliding window, STA-like but per token, not per tile),
-- and to every key on a coarse grid (rows and columns that are multiples
-- of `stride`, in every frame): a cheap global summary in the manner of
-- dilated attention. Local-in-space masks like this one are what a tiled
-- layout makes block-dense, so it is also the case `auto` must win.
--
-- Params:
--   wt, wy, wx (1, 6, 6)  window half-sizes in frames, rows, columns.
--   stride     (16)       grid spacing of the global keys; 0: no grid.
--   text       (true)     text tokens global.
--   block      (64)       block size in tokens, queries and keys (128: the
--                         warp-specialised TMA kernel on sm_90a).
--   layout     ("identity") identity, transpose, tile (1 x 8 x 8 tiles) or
--                         auto: the kernels' checks under every layout.

local param = sieve.params { wt = 1, wy = 6, wx = 6, stride = 16, text = true, block = 64, layout = "identity" }

local mask = sieve.mask(function(q, k)
  local near = sieve.abs(q.t - k.t):le(param.wt) & sieve.abs(q.y - k.y):le(param.wy)
             & sieve.abs(q.x - k.x):le(param.wx)
  if param.stride == 0 then return near end
  local grid = (k.y % param.stride):eq(0) & (k.x % param.stride):eq(0) & ~k.text
  return near | grid
end)

if param.text then mask = sieve.union(mask, sieve.text_rows(), sieve.text_cols()) end

local layouts = { identity = sieve.layout.identity, transpose = sieve.layout.transpose,
                  tile = sieve.layout.tile { 1, 8, 8 }, auto = sieve.layout.auto }

return sieve.pattern {
  name = "dilated",
  block = { q = param.block, k = param.block },
  mask = mask,
  layout = layouts[param.layout],
}
