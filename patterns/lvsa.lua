-- lvsa: Long Video Sparse Attention (LVSA): a window of latent frames
-- around each query's frame plus global anchor frames, the periodic ones
-- rotating with the denoising step so that over a few steps every frame is
-- an anchor (no fixed grid of anchors biases the long-range structure).
--
-- Follows JiusiServe/LongVideoSparseAttention at c72a36baf742281876245034f0d45301d114daa9:
--   lvsa/sparse_attention.py  adaptive_window_bounds, expanded_window_bounds,
--                             get_window_bounds, compute_global_indices,
--                             compute_auto_kfi (the frame sets below)
--   lvsa/lvsa_processor.py    set_step (offset = step % interval, no layer
--                             term; the example calls it from a step-end
--                             callback, so there step s runs with step s-1's
--                             offset), text (encoder) keys global, text
--                             queries dense
--   examples/wan_generate.py  defaults: --window-size 12, --n-first-frames 4,
--                             --key-frame-interval 16 video frames, i.e. 3,
--                             1 and 4 latent frames (VAE stride 4)
--
-- A video query in frame f sees the anchor frames G and the frames of its
-- window, for every f (anchor frames included):
--   G = {0 .. first-1} u {(offset + i*interval) % T : i < ceil(T / interval)}
--       offset = step % interval when rotating, else 0
--   window: [f - W, f + W] shifted at the edges to keep 2W+1 frames, then
--       widened one frame at a time, left then right, until it holds
--       min(2W+1, T - |G|) frames that are not anchors (expand = true).
-- With train_frames > 0 the interval is LVSA's auto spacing
-- (compute_auto_kfi: the attended frames approximate train_frames *
-- sparsity_scale), which is 1, i.e. dense attention, at or below that
-- length. T is the shape's latent frame count: the frame sets are computed
-- from it when the pattern meets a shape.
--
-- sieve's own, not LVSA's: layer_stride moves the anchor grid with the
-- layer too (sieve's earlier variant); 0 (LVSA) by default. And the
-- default itself, rotation over a fixed interval: LVSA turns its auto
-- spacing on whenever it rotates (lvsa/parallel.py install_lvsa_processors:
-- use_auto_kfi = auto_keyframes or rotate_keyframes), so it runs either
-- rotate = false with interval 4 (its examples' defaults) or rotation with
-- train_frames set (its README's --rotate-keyframes --auto-keyframes;
-- 21 on Wan). Not followed either: LVSA's examples call set_step from the
-- step-end callback, so its step s runs step s-1's offset (sieve: step s's),
-- and install_lvsa_processors shrinks the window to train_frames / 2 and
-- first to train_frames / 4 where 2W+1+first covers a video longer than
-- train_frames.
--
-- Params:
--   window         (3)    W: latent frames on each side of the query's frame.
--   first          (1)    leading latent frames that are always anchors.
--   interval       (4)    latent frames between periodic anchors; 0: none.
--   rotate         (true) the periodic anchors move with the step.
--   expand         (true) widen the window past anchors to 2W+1 other frames.
--   train_frames   (0)    the model's training length in latent frames (21
--                         Wan, 33 HunyuanVideo 1.5, 13 CogVideoX): when > 0
--                         the interval is auto-spaced to it; frames up to 256.
--   sparsity_scale (1.0)  with train_frames: < 1 sparser, > 1 denser.
--   layer_stride   (0)    sieve's own: anchor grid shift per layer.
--   text           (true) text tokens attend to, and are attended by, every
--                         token.

local param = sieve.params {
  window = 3, first = 1, interval = 4, rotate = true, expand = true,
  train_frames = 0, sparsity_scale = 1.0, layer_stride = 0, text = true,
}
sieve.expect("window", param.window >= 0, "must be 0 or more")
sieve.expect("first", param.first >= 0, "must be 0 or more")
sieve.expect("interval", param.interval >= 0, "must be 0 or more (0: no periodic anchors)")
sieve.expect("train_frames", param.train_frames >= 0 and param.train_frames <= 256, "must be in 0 .. 256")
sieve.expect("sparsity_scale", param.sparsity_scale > 0, "must be above 0")
sieve.expect("layer_stride", param.layer_stride >= 0, "must be 0 or more")

local T, W, NF = sieve.shape.frames, param.window, param.first
local min, max, choose, count_mod = sieve.min, sieve.max, sieve.choose, sieve.count_mod

-- compute_auto_kfi, with T symbolic: folds to the number once T is known.
local function auto_interval()
  local ref = math.max(NF + 1, math.floor(param.train_frames * param.sparsity_scale))
  local target = max(NF, ref - min(2 * W + 1, T))
  local strict = 1
  for k = 1, 256 do
    local size = min(NF, T) + count_mod(min(NF, T), T - 1, 0, k)
    strict = choose(T:ge(k) & size:ge(target), k, strict)
  end
  local mandatory = 2 * W + NF
  local total = max(T - mandatory, ref - mandatory)
  local per = math.max(ref - mandatory, 1)
  local fallback = (total + per - 1) // per
  return choose(T:le(ref), 1, max(strict, fallback))
end

local kfi = param.train_frames > 0 and auto_interval() or param.interval
local periodic = param.train_frames > 0 or param.interval > 0

-- The anchor set as a predicate on a frame expression, and its size in
-- [lo, hi] (0 <= lo, hi <= T - 1) in closed form.
local anchor, anchors_in
if periodic then
  local shift = param.rotate and sieve.step or 0
  if param.layer_stride ~= 0 then shift = shift + sieve.layer * param.layer_stride end
  local off = shift % kfi
  local n = (T + kfi - 1) // kfi
  local e = off + n * kfi - T  -- wrapped anchors land in [0, e)
  anchor = function(x)
    return x:lt(NF) | (x:ge(off) & ((x - off) % kfi):eq(0))
      | (x:lt(e) & ((x + T - off) % kfi):eq(0))
  end
  anchors_in = function(lo, hi)
    local f = max(0, min(hi, NF - 1) - lo + 1)
    local a = count_mod(max(lo, off), hi, off, kfi) - count_mod(max(lo, off), min(hi, NF - 1), off, kfi)
    local b = count_mod(lo, min(hi, e - 1), off - T, kfi) - count_mod(lo, min(hi, e - 1, NF - 1), off - T, kfi)
    return f + a + b
  end
else
  anchor = function(x) return x:lt(NF) end
  anchors_in = function(lo, hi) return max(0, min(hi, NF - 1) - lo + 1) end
end

-- The window of query frame f: adaptive_window_bounds, then the expansion
-- of expanded_window_bounds as a count: after m single-frame moves (left
-- first, alternating, a blocked side skipped) the window is
-- [lo0 - l(m), hi0 + r(m)]; it stops at the first m whose window holds the
-- target of non-anchor frames, or when both sides are blocked. Its non-anchor
-- count grows with m, so that m is the number of m below it that fall short.
local function window_of(f)
  local lo0 = max(0, min(f - W, T - 1 - 2 * W))
  local hi0 = min(T - 1, max(f + W, 2 * W))
  if not param.expand then return lo0, hi0 end
  local target = min(2 * W + 1, T - anchors_in(0, T - 1))
  local a, b = lo0, T - 1 - hi0
  local function at(m)
    local l = min(a, max((m + 1) // 2, m - b))
    return lo0 - l, hi0 + min(b, m - l)
  end
  -- Enough moves for any interval >= 2: a window of 4W + 2 first + 6 frames
  -- holds 2W+1 non-anchors (interval 1 has a target of 0).
  local moves = 0
  for m = 0, 2 * W + 2 * NF + 6 do
    local lo, hi = at(m)
    local short = (hi - lo + 1 - anchors_in(lo, hi)):lt(target)
    moves = moves + choose(short & (a + b):gt(m), 1, 0)
  end
  return at(moves)
end

local parts = { sieve.keys(function(k) return anchor(k.t) end) }
if W > 0 then
  parts[#parts + 1] = sieve.mask(function(q, k)
    local lo, hi = window_of(q.t)
    return k.t:ge(lo) & k.t:le(hi)
  end)
end
local mask = sieve.intersection(sieve.union(parts), sieve.mask(function(q, k) return ~q.text & ~k.text end))
if param.text then mask = sieve.union(mask, sieve.text_rows(), sieve.text_cols()) end

return sieve.pattern {
  name = "lvsa",
  mask = mask,
}
