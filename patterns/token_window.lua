-- token_window: 1-D sliding window over the token sequence in model order:
-- a query at index i sees keys at indices i - w .. i + w.
--
-- Sliding-window (local) attention as in Longformer (arXiv 2004.05150).
-- For video it is a poor fit (a window of a few thousand tokens covers a
-- band of rows, not a neighbourhood in t, y, x), which is why the 3-D
-- patterns exist; it is kept as the reference 1-D case.
--
-- Params:
--   window (4096) half-width of the window, in tokens. The window runs over
--                 all tokens, text included.
--   text   (true) text tokens also attend to, and are attended by, every
--                 token.

local param = sieve.params { window = 4096, text = true }

local mask = sieve.token_window(param.window)
if param.text then
  mask = sieve.union(mask, sieve.text_rows(), sieve.text_cols())
end

return sieve.pattern {
  name = "token_window",
  mask = mask,
}
