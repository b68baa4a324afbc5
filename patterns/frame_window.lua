-- frame_window: each video token sees every token of the frames within
-- `window` frames of its own: |q.t - k.t| <= window.
--
-- A temporal sliding window: the local part of LVSA, of the spatial heads
-- of Sparse VideoGen (arXiv 2502.01776) and of most training-free video
-- patterns; sieve's design card measures it with FlexAttention at +-1 and
-- +-3 frames.
--
-- Params:
--   window (1)    frames on each side (0: same frame only).
--   text   (true) text tokens attend to, and are attended by, every token.

local param = sieve.params { window = 1, text = true }

local mask = sieve.frame_window(param.window)
if param.text then
  mask = sieve.union(mask, sieve.text_rows(), sieve.text_cols())
end

return sieve.pattern {
  name = "frame_window",
  mask = mask,
}
