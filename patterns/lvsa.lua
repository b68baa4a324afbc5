-- lvsa: Long Video Sparse Attention (LVSA): a window of latent frames
-- around each query's frame plus global anchor frames: the leading frames
-- and a periodic grid, which can rotate with the denoising step so that
-- over a few steps every frame is an anchor.
--
-- Follows JiusiServe/LongVideoSparseAttention at c72a36baf742281876245034f0d45301d114daa9:
--   lvsa/sparse_attention.py  adaptive_window_bounds (l. 40-47),
--                             expanded_window_bounds (50-86),
--                             get_window_bounds (89-104), compute_auto_kfi
--                             (132-195), compute_global_indices (198-216):
--                             the frame sets below
--   lvsa/parallel.py          install_lvsa_processors (48-131): the window
--                             shrink, and auto spacing whenever it rotates
--                             (use_auto_kfi = auto_keyframes or
--                             rotate_keyframes, l. 115)
--   lvsa/lvsa_processor.py    set_step (317-331): offset = step % interval,
--                             no layer term; the processor starts at offset
--                             0 (l. 138, 150); text (encoder) keys global,
--                             text queries dense (545-591)
--   examples/wan_generate.py  (and hunyuan_generate.py, cogvideox_generate.py)
--                             defaults --window-size 12, --n-first-frames 4,
--                             --key-frame-interval 16 video frames, i.e. 3,
--                             1 and 4 latent frames (VAE stride 4, parallel.py
--                             l. 95-96, 127-128); no rotation unless
--                             --rotate-keyframes; set_step(i) runs after step
--                             i's attention (wan: callback_on_step_end,
--                             l. 425-428, 475; hunyuan and cogvideox: a hook
--                             on scheduler.step), so step s runs step s-1's
--                             offset and step 0 the initial 0
--
-- A video query in frame f sees the anchor frames G and the frames of its
-- window, for every f (anchor frames included):
--   G = {0 .. first-1} u {(offset + i*interval) % T : i < ceil(T / interval)}
--       offset = max(step - 1, 0) % interval with rotate, else 0
--   window: [f - W, f + W] shifted at the edges to keep 2W+1 frames, then
--       widened one frame at a time, left then right, until it holds
--       min(2W+1, T - |G|) frames that are not anchors (expand = true);
--       none when W = 0.
-- With train_frames > 0 (LVSA's reference_latent_frames):
--   - where 2W+1+first >= T > train_frames, W becomes
--     max(train_frames // 2, 1) and first max(train_frames // 4, 1)
--     (install_lvsa_processors, l. 102-107), before the spacing below;
--   - the interval is LVSA's auto spacing (compute_auto_kfi: the attended
--     frames approximate train_frames * sparsity_scale), which is 1, i.e.
--     dense attention, at or below that length.
-- T is the shape's latent frame count: the frame sets are computed from it
-- when the pattern meets a shape.
--
-- rotate = true needs train_frames: LVSA turns its auto spacing on whenever
-- it rotates, so it never rotates over a fixed interval (its README's
-- setting is --rotate-keyframes --auto-keyframes; 21 latent frames on Wan).
--
-- sieve's own, not LVSA's:
--   rotate_fixed  rotation over the fixed interval, step s on offset
--                 s % interval (sieve's earlier default; no train_frames).
--   layer_stride  moves the anchor grid with the layer too.
-- Still differs: LVSA always knows its model's reference length, so it
-- shrinks the window with the fixed interval too; sieve shrinks only with
-- train_frames, which also turns the auto spacing on.
--
-- Params:
--   window         (3)     W: latent frames on each side of the query's frame.
--   first          (1)     leading latent frames that are always anchors.
--   interval       (4)     latent frames between periodic anchors; 0: none.
--   rotate         (false) LVSA's --rotate-keyframes: the periodic anchors
--                          move one frame a step (needs train_frames).
--   expand         (true)  widen the window past anchors to 2W+1 other frames.
--   train_frames   (0)     the model's training length in latent frames (21
--                          Wan, 33 HunyuanVideo 1.5, 13 CogVideoX): when > 0
--                          the window shrink and the auto spacing above;
--                          frames up to 256.
--   sparsity_scale (1.0)   with train_frames: < 1 sparser, > 1 denser.
--   rotate_fixed   (false) sieve's own: rotation over the fixed interval.
--   layer_stride   (0)     sieve's own: anchor grid shift per layer.
--   text           (true)  text tokens attend to, and are attended by, every
--                          token.

local param = sieve.params {
  window = 3, first = 1, interval = 4, rotate = false, expand = true,
  train_frames = 0, sparsity_scale = 1.0, rotate_fixed = false, layer_stride = 0, text = true,
}
sieve.expect("window", param.window >= 0, "must be 0 or more")
sieve.expect("first", param.first >= 0, "must be 0 or more")
sieve.expect("interval", param.interval >= 0, "must be 0 or more (0: no periodic anchors)")
sieve.expect("train_frames", param.train_frames >= 0 and param.train_frames <= 256, "must be in 0 .. 256")
sieve.expect("sparsity_scale", param.sparsity_scale > 0, "must be above 0")
sieve.expect("layer_stride", param.layer_stride >= 0, "must be 0 or more")
sieve.expect("rotate", not param.rotate or param.train_frames > 0,
  "needs train_frames (LVSA rotates only with its anchors auto-spaced to the training length; "
    .. "rotate_fixed = true is sieve's own rotation over the fixed interval)")
sieve.expect("rotate_fixed", not param.rotate_fixed or (param.train_frames == 0 and param.interval > 0),
  "rotates over the fixed interval: needs interval > 0 and no train_frames (with train_frames use rotate)")
sieve.expect("rotate_fixed", not (param.rotate_fixed and param.rotate), "and rotate are exclusive")

local T = sieve.shape.frames
local min, max, choose, count_mod = sieve.min, sieve.max, sieve.choose, sieve.count_mod

-- install_lvsa_processors' shrink: a window and leading frames that cover a
-- video longer than the training length become train_frames / 2 and / 4.
-- W and NF stay numbers unless the shrink can happen (2W+1+first above the
-- training length); Wmax and NFmax bound them for the loops below.
local W, NF = param.window, param.first
local Wmax, NFmax = W, NF
local ref_frames = param.train_frames
if ref_frames > 0 and 2 * W + 1 + NF > ref_frames then
  local shrink = T:le(2 * W + 1 + NF) & T:gt(ref_frames)
  local Ws, NFs = math.max(ref_frames // 2, 1), math.max(ref_frames // 4, 1)
  Wmax, NFmax = math.max(W, Ws), math.max(NF, NFs)
  W, NF = choose(shrink, Ws, W), choose(shrink, NFs, NF)
end

-- math.max where both are numbers (the usual case: constants stay Lua's).
local function upper(a, b)
  if type(a) == "number" and type(b) == "number" then return math.max(a, b) end
  return max(a, b)
end

-- compute_auto_kfi, with T symbolic: folds to the number once T is known.
local function auto_interval()
  local ref = upper(NF + 1, math.floor(param.train_frames * param.sparsity_scale))
  local target = max(NF, ref - min(2 * W + 1, T))
  local strict = 1
  for k = 1, 256 do
    local size = min(NF, T) + count_mod(min(NF, T), T - 1, 0, k)
    strict = choose(T:ge(k) & size:ge(target), k, strict)
  end
  local mandatory = 2 * W + NF
  local total = max(T - mandatory, ref - mandatory)
  local per = upper(ref - mandatory, 1)
  local fallback = (total + per - 1) // per
  return choose(T:le(ref), 1, max(strict, fallback))
end

local kfi = param.train_frames > 0 and auto_interval() or param.interval
local periodic = param.train_frames > 0 or param.interval > 0

-- The anchor set as a predicate on a frame expression, and its size in
-- [lo, hi] (0 <= lo, hi <= T - 1) in closed form.
local anchor, anchors_in
if periodic then
  -- LVSA's set_step(s) runs after step s's attention: step s on s - 1's
  -- offset, step 0 on the processor's initial 0 (written with choose: a
  -- max here costs the GPU table builder's interval code a spill on sm_80).
  -- rotate_fixed (sieve's own) takes step s's.
  local shift = 0
  if param.rotate then shift = sieve.step - 1 + choose(sieve.step:eq(0), 1, 0) end
  if param.rotate_fixed then shift = sieve.step end
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
  for m = 0, 2 * Wmax + 2 * NFmax + 6 do
    local lo, hi = at(m)
    local short = (hi - lo + 1 - anchors_in(lo, hi)):lt(target)
    moves = moves + choose(short & (a + b):gt(m), 1, 0)
  end
  return at(moves)
end

local parts = { sieve.keys(function(k) return anchor(k.t) end) }
if Wmax > 0 then
  parts[#parts + 1] = sieve.mask(function(q, k)
    local lo, hi = window_of(q.t)
    local inside = k.t:ge(lo) & k.t:le(hi)
    -- get_window_bounds: no window at W = 0 (a shrink never makes it 0).
    if type(W) ~= "number" and param.window == 0 then inside = inside & W:gt(0) end
    return inside
  end)
end
local mask = sieve.intersection(sieve.union(parts), sieve.mask(function(q, k) return ~q.text & ~k.text end))
if param.text then mask = sieve.union(mask, sieve.text_rows(), sieve.text_cols()) end

return sieve.pattern {
  name = "lvsa",
  mask = mask,
}
