-- dense: full attention, every query sees every key (text and video).
--
-- The baseline the sparse patterns are measured against: what
-- FlashAttention (arXiv 2205.14135, 2307.08691) computes for a video DiT.
--
-- Params: none.
--
-- Blocks of 384 tokens: every block is full, so their size costs nothing
-- but table entries, and 384 is a multiple of every kernel's query rows
-- (64, 128, 192) and key step (32 .. 192), so every config can run it.

return sieve.pattern {
  name = "dense",
  mask = sieve.dense(),
  block = { q = 384, k = 384 },
}
