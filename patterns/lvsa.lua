-- lvsa: Long Video Sparse Attention (LVSA, arXiv 2605.31057): a window of
-- frames plus global anchor frames that rotate with the denoising step and
-- the layer, so no fixed grid of anchors biases the long-range structure
-- (the cause of the "frozen", repeating video past the training length).
--
-- A video token sees the frames within `window` of its own, and every
-- anchor frame; anchor-frame tokens see every frame (both directions).
-- Frame f is an anchor at (step, layer) when
--   (f + stride * step + layer_stride * layer) % period == 0.
--
-- Params:
--   window       (1)    frames on each side of the query's frame.
--   period       (8)    one frame in `period` is an anchor.
--   stride       (1)    how far the anchor grid moves per denoising step.
--   layer_stride (1)    how far it moves per layer.
--   text         (true) text tokens attend to, and are attended by, every
--                       token.

local param = sieve.params {
  window = 1, period = 8, stride = 1, layer_stride = 1, text = true,
}

local parts = {
  sieve.frame_window(param.window),
  sieve.rotating_anchors {
    period = param.period, stride = param.stride, layer_stride = param.layer_stride,
  },
}
if param.text then
  parts[#parts + 1] = sieve.text_rows()
  parts[#parts + 1] = sieve.text_cols()
end

return sieve.pattern {
  name = "lvsa",
  mask = sieve.union(parts),
}
