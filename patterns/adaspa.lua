-- adaspa: AdaSpa, training-free adaptive sparse attention (arXiv 2502.21079).
--
-- AdaSpa's pattern is blockified and differs per head and per input, so no
-- static mask describes it: at a few denoising steps a search computes each
-- key block's share of the attention mass from a row LSE (the first
-- search's own attention pass, cached for the later ones: "Fused
-- LSE-Cached Search"), and every query block keeps its heaviest key blocks;
-- the pattern is stable across steps, so the choice is reused until the
-- next search. The mask below is the set the search chooses from.
--
-- Follows the paper (arXiv 2502.21079v1; no public code):
--   §4.1 eq. 13-14  the block mass W_sum_attn and top-k at a target sparsity;
--   §4.3 (2)        "Row Wise": every query block keeps the same count,
--                   ceil((1 - s) nk) of its nk key blocks (s = 0.8: 20%);
--   §4.3            blocks of 64 tokens, searches at Ts = {10, 30};
--   §5              dense attention for the first 10 steps (warm-up);
--   §4.2            head-adaptive tiers: at the first search each head's
--                   recall (eq. 9) at s is measured; with n heads above
--                   0.8, the n of highest recall move to sparsity (1+s)/2
--                   and the n of lowest to (3s-1)/2, so the mean stays s;
--   §4.3 (1)        text sink: every video-text, text-video and text-text
--                   block is kept (on top of the top-k), for the prompt's
--                   valid text length at run time;
--   §4.2, Alg. 1-2  Fused LSE-Cached Online Search: the first search runs
--                   the attention pass (which writes the LSE) and then the
--                   block masses from that LSE; later searches (step 30)
--                   are "LSE-Cached": one pass of Q K^T over every block
--                   with the LSE cached at the first search, no attention
--                   pass, and that step runs sparse on the new selection
--                   (Fig. 7).
-- sieve's choices where the paper is silent: with more than half the heads
-- above 0.8, n is half the heads (the tiers may not overlap); (3s-1)/2
-- below 0 is 0 (dense) and the mean then rises; ties in recall go by head
-- index; the recall of a head counts the text sink's blocks it keeps; the
-- tiers are measured at the first search of a run and kept until a step
-- before it starts the next run.
--
-- sieve's own (select = "topp"): keep the fewest key blocks holding
-- `recall` of each row's mass, optionally capped at `topk` blocks, and with
-- coarse > block a coarse-to-fine search (groups of `coarse` tokens first).
-- These are sieve's ideas, not the paper's hierarchy.
--
-- Params:
--   select        ("topk") "topk" (AdaSpa) or "topp" (sieve's).
--   sparsity      (0.8)  topk: share of each row's key blocks left out.
--   block         (64)   query and key block, tokens (a multiple of 16).
--   warmup        (10)   the first search step; earlier steps run dense.
--   every         (20)   steps between searches.
--   total_steps   (50)   denoising steps in the schedule.
--   head_adaptive (true) topk: the head-adaptive tiers (§4.2).
--   text_sink     (true) keep every block holding valid text (§4.3).
--   cache_lse     (true) later searches reuse the first search's LSE (§4.2).
--   recall        (0.9)  topp: share of each row's mass to keep.
--   topk          (0)    topp: at most this many key blocks a row (0: no cap).
--   coarse        (0)    topp: the coarse level in tokens (0: one level).

local param = sieve.params {
  select = "topk", sparsity = 0.8, block = 64, warmup = 10, every = 20, total_steps = 50,
  head_adaptive = true, text_sink = true, cache_lse = true, recall = 0.9, topk = 0, coarse = 0,
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
  selection = sieve.search {
    sparsity = param.sparsity, steps = search_steps, levels = { param.block },
    tiers = param.head_adaptive and 0.8 or 0, text_sink = param.text_sink, cache_lse = param.cache_lse,
  }
else
  selection = sieve.search {
    recall = param.recall,
    topk = param.topk,
    steps = search_steps,
    levels = param.coarse > 0 and { param.coarse, param.block } or { param.block },
    text_sink = param.text_sink,
    cache_lse = param.cache_lse,
  }
end

-- Everything is allowed: the search, not the mask, makes AdaSpa sparse.
-- The steps before the first search are the schedule's warm-up, so they
-- run the dense kernel in its default config, not the search's blocks.
return sieve.pattern {
  name = "adaspa",
  block = { q = param.block, k = param.block },
  mask = sieve.dense(),
  selection = selection,
  schedule = { dense_steps = param.warmup },
}
