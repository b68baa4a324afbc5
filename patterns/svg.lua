-- svg: Sparse VideoGen (SVG, arXiv 2502.01776). Heads are of two kinds:
--   spatial heads attend within their own frame (plus `window` frames on
--     each side), laid out in model order, where a frame is contiguous;
--   temporal heads attend to the same (y, x) position in every frame, laid
--     out transposed (position-major, frames contiguous), which makes their
--     scattered mask block-dense.
-- Both kinds keep full attention to and from the text tokens. Spatial heads
-- also attend to and from the first frame, the attention sink SVG keeps
-- dense; temporal heads already see the first frame at their own position,
-- and under their transposed layout a whole-frame sink would touch every
-- key block, leaving no block empty.
--
-- SVG decides each head's kind online, by profiling a few sampled queries;
-- that search is a later part of sieve. For now the split is static: heads
-- alternate spatial, temporal (set `profile = true` to declare the online
-- profiling in the IR; the static split is then its starting point).
--
-- Params:
--   window  (0)     extra frames on each side for spatial heads.
--   sink    (true)  the first frame is a global anchor for spatial heads.
--   text    (true)  text tokens attend to, and are attended by, every token.
--   profile (false) declare SVG's sampled-query profiling as the selection.
--   samples (64)    sampled query rows per head when profiling.

local param = sieve.params {
  window = 0, sink = true, text = true, profile = false, samples = 64,
}

local function with_globals(m, sink)
  local parts = { m }
  if sink then parts[#parts + 1] = sieve.global_frames { 0 } end
  if param.text then
    parts[#parts + 1] = sieve.text_rows()
    parts[#parts + 1] = sieve.text_cols()
  end
  return sieve.union(parts)
end

local selection = sieve.static
if param.profile then
  selection = sieve.profile { samples = param.samples, steps = { 0, 10, 20, 30, 40 } }
end

return sieve.pattern {
  name = "svg",
  classes = {
    { name = "spatial", layout = sieve.layout.identity,
      mask = with_globals(sieve.frame_window(param.window), param.sink) },
    { name = "temporal", layout = sieve.layout.transpose,
      mask = with_globals(sieve.temporal(), false) },
  },
  heads = { "spatial", "temporal" },
  selection = selection,
}
