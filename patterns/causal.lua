-- causal: block-causal attention over frames. A video token sees every token
-- of its own frame and of earlier frames, never a later frame.
--
-- This is the frame-level causal mask of autoregressive video diffusion,
-- e.g. CausVid (arXiv 2412.07772), which turns a bidirectional video DiT
-- into one that generates frame chunks in order.
--
-- Params:
--   text  (true)  text tokens attend to, and are attended by, every token;
--                 false leaves them to the causal mask alone, which never
--                 holds for text, so text rows and columns are empty.

local param = sieve.params { text = true }

local mask = sieve.causal_frames()
if param.text then
  mask = sieve.union(mask, sieve.text_rows(), sieve.text_cols())
end

return sieve.pattern {
  name = "causal",
  mask = mask,
}
