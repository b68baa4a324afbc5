-- dense: full attention, every query sees every key (text and video).
--
-- The baseline the sparse patterns are measured against: what
-- FlashAttention (arXiv 2205.14135, 2307.08691) computes for a video DiT.
--
-- Params: none.

return sieve.pattern {
  name = "dense",
  mask = sieve.dense(),
}
