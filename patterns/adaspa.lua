-- adaspa: AdaSpa, training-free adaptive sparse attention (arXiv 2502.21079).
--
-- AdaSpa's pattern is blockified and differs per head and per input, so no
-- static mask describes it: at a few denoising steps a search computes each
-- key block's exact share of the attention mass from the row LSE of that
-- step's attention pass ("Fused LSE-Cached Search"), and every query block
-- keeps its heaviest key blocks; the pattern is stable across steps, so the
-- choice is reused until the next search. The mask below is the set the
-- search chooses from.
--
-- Follows the paper (arXiv 2502.21079v1; no public code): §4.2-4.3 top-k
-- per query block at a target sparsity (0.8: each row keeps 20% of its key
-- blocks), blocks of 64 tokens; §5 dense attention until step 10, searches
-- at steps 10 and 30 of 50.
--
-- What differs still: the head-adaptive tiers (heads above 0.8 recall at
-- the base sparsity move to (1+s)/2, as many of the lowest to (3s-1)/2) and
-- the text sink (video-text, text-video and text-text blocks always kept)
-- are not built: every head keeps the same share and text blocks compete
-- with video blocks. The re-search at step 30 is a separate pass (a dense
-- pass plus the mass kernel), not fused into that step's attention.
--
-- sieve's own (select = "topp"): keep the fewest key blocks holding
-- `recall` of each row's mass, optionally capped at `topk` blocks, and with
-- coarse > block a coarse-to-fine search (groups of `coarse` tokens first).
-- These are sieve's ideas, not the paper's hierarchy.
--
-- Params:
--   select      ("topk") "topk" (AdaSpa) or "topp" (sieve's).
--   sparsity    (0.8)  topk: share of each row's key blocks left out.
--   block       (64)   query and key block, tokens (a multiple of 16).
--   warmup      (10)   the first search step; earlier steps run dense.
--   every       (20)   steps between searches.
--   total_steps (50)   denoising steps in the schedule.
--   recall      (0.9)  topp: share of each row's mass to keep.
--   topk        (0)    topp: at most this many key blocks a row (0: no cap).
--   coarse      (0)    topp: the coarse level in tokens (0: one level).

local param = sieve.params {
  select = "topk", sparsity = 0.8, block = 64, warmup = 10, every = 20, total_steps = 50,
  recall = 0.9, topk = 0, coarse = 0,
}
sieve.expect("select", param.select == "topk" or param.select == "topp", 'must be "topk" or "topp"')
sieve.expect("sparsity", param.sparsity > 0 and param.sparsity < 1, "must be in (0, 1)")
sieve.expect("block", param.block >= 16 and param.block <= 1024 and param.block % 16 == 0,
             "must be a multiple of 16 in 16 .. 1024")
sieve.expect("warmup", param.warmup >= 0, "must be 0 or more")
sieve.expect("every", param.every >= 1, "must be at least 1")
sieve.expect("total_steps", param.total_steps > param.warmup, "must be above warmup")
sieve.expect("recall", param.recall > 0 and param.recall <= 1, "must be in (0, 1]")
sieve.expect("topk", param.topk >= 0, "must be 0 or more")
sieve.expect("coarse", param.coarse == 0 or (param.coarse > param.block and param.coarse % param.block == 0),
             "must be 0 or a multiple of block above it")

local search_steps = {}
for s = param.warmup, param.total_steps - 1, param.every do
  search_steps[#search_steps + 1] = s
end

local selection
if param.select == "topk" then
  selection = sieve.search { sparsity = param.sparsity, steps = search_steps, levels = { param.block } }
else
  selection = sieve.search {
    recall = param.recall,
    topk = param.topk,
    steps = search_steps,
    levels = param.coarse > 0 and { param.coarse, param.block } or { param.block },
  }
end

-- Everything is allowed: the search, not the mask, makes AdaSpa sparse.
return sieve.pattern {
  name = "adaspa",
  block = { q = param.block, k = param.block },
  mask = sieve.dense(),
  selection = selection,
}
