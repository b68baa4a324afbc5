-- radial: a radial-decay mask in the manner of Radial Attention (arXiv
-- 2506.19852), written as Lua predicates: a bench and test pattern for
-- irregular masks, not a shipped one.
--
-- Spatial heads: a query attends to keys whose (y, x) lies within a square
-- reach of its own; the reach halves each time the frame distance doubles
-- (d <= 1: reach, d <= 3: reach/2, d <= 7: reach/4, d <= 15: reach/8,
-- farther: nothing). Frame 0 is an attention sink: every query sees it.
-- Temporal heads run in the transposed layout (frames contiguous): a small
-- spatial neighbourhood, shrinking with frame distance, over many frames.
-- Their sink is optional (tsink): under that layout frame 0 lies in every
-- key block, so it leaves no block empty (the worst case for the builder,
-- and for the kernel, which then visits every block).
-- 64-token blocks, as a partial block's cost grows with its size.
--
-- Params:
--   reach  (16)  spatial reach at frame distance 0 and 1, in tokens.
--   treach (2)   temporal heads' spatial reach at frame distance <= 3.
--   tsink  (false) frame 0 is a sink for temporal heads too.
--   text   (true) text tokens global.
--   block  (64)   block size in tokens, queries and keys.

local param = sieve.params { reach = 16, treach = 2, tsink = false, text = true, block = 64 }

local function band(d, r)
  -- reach r at d <= 1, halving per doubling of d; -1 (nothing) past 15.
  return sieve.choose(d:le(1), r, sieve.choose(d:le(3), r // 2,
         sieve.choose(d:le(7), r // 4, sieve.choose(d:le(15), r // 8, -1))))
end

local spatial = sieve.mask(function(q, k)
  local d = sieve.abs(q.t - k.t)
  local r = band(d, param.reach)
  return (sieve.abs(q.y - k.y):le(r) & sieve.abs(q.x - k.x):le(r)) | k.t:eq(0)
end)

local temporal = sieve.mask(function(q, k)
  local d = sieve.abs(q.t - k.t)
  local r = sieve.choose(d:le(3), param.treach, sieve.choose(d:le(15), param.treach // 2, 0))
  local near = sieve.abs(q.y - k.y):le(r) & sieve.abs(q.x - k.x):le(r)
  if param.tsink then return near | k.t:eq(0) end
  return near
end)

local function with_text(m)
  if not param.text then return m end
  return sieve.union(m, sieve.text_rows(), sieve.text_cols())
end

return sieve.pattern {
  name = "radial",
  block = { q = param.block, k = param.block },
  classes = {
    { name = "spatial", layout = sieve.layout.identity, mask = with_text(spatial) },
    { name = "temporal", layout = sieve.layout.transpose, mask = with_text(temporal) },
  },
  heads = { "spatial", "temporal" },
}
