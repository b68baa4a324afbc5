-- adaspa: AdaSpa, training-free adaptive sparse attention (arXiv 2502.21079).
--
-- AdaSpa's pattern is blockified and hierarchical, and differs per head and
-- per input, so no static mask describes it: at a few denoising steps a
-- search computes each key block's exact share of the attention mass from
-- the row LSE of that step's attention pass ("Fused LSE-Cached Search") and
-- keeps, per input, head and query block, the fewest key blocks that hold
-- `recall` of the mass. The pattern is stable across steps, so the result is
-- reused until the next search step. The static mask below is the set the
-- search may choose from.
--
-- The hierarchy: with coarse > 128, top-p runs first on groups of `coarse`
-- key tokens (whole regions come and go together), then on the 128-token
-- blocks of the groups kept, towards the same share of the row's mass, so
-- the kept mass still reaches `recall`. The default is one level: on
-- bench/proxy.py's workload, coarse = 512 kept 5% more blocks for the same
-- recall (bench/RESULTS.md).
--
-- Params:
--   recall  (0.9)  fraction of each query block's attention mass to keep.
--   topk    (0)    at most this many key blocks per query block (0: no cap).
--   warmup  (10)   the first search step: earlier steps run the allowed set
--                  dense (AdaSpa starts sparse after a few dense steps).
--   every   (10)   steps between searches.
--   total_steps (50) denoising steps in the schedule.
--   coarse  (128)  the coarse level of the block hierarchy, in tokens (a
--                  multiple of 128); the fine level is the kernel block, 128.
--
-- Text tokens are in the allowed set like every other token: the search
-- ranks text blocks with the video blocks, as AdaSpa does across modalities.

local param = sieve.params {
  recall = 0.9, topk = 0, warmup = 10, every = 10, total_steps = 50, coarse = 128,
}

local search_steps = {}
for s = param.warmup, param.total_steps - 1, param.every do
  search_steps[#search_steps + 1] = s
end

-- Everything is allowed: the search, not the mask, makes AdaSpa sparse.
local allowed = sieve.dense()

return sieve.pattern {
  name = "adaspa",
  block = { q = 128, k = 128 },
  mask = allowed,
  selection = sieve.search {
    recall = param.recall,
    topk = param.topk,
    steps = search_steps,
    levels = param.coarse > 128 and { param.coarse, 128 } or { 128 },
  },
}
