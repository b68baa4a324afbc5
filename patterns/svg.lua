-- svg: Sparse VideoGen (SVG, arXiv 2502.01776). Heads are of two kinds,
-- both a band |i - j| < w over the video tokens:
--   spatial heads in model order (frame-major), where the band covers the
--     query's own frame and its neighbours;
--   temporal heads in the transposed order (position-major, frames
--     contiguous), where the same band covers the query's position in
--     nearby frames; sieve runs them in the transpose layout, so the band is
--     block-dense there.
-- Text rows and columns are dense; padding past the prompt's real length is
-- masked through the kernel's text-length argument (sieve_plan_set_text_len).
--
-- Follows svg-project/Sparse-VideoGen at 5ce7b0127c0d44383ee8b9e5512431feb625f621:
--   svg/models/hyvideo/utils.py  generate_temporal_head_mask_mod (band
--                                floor(w / 128) * 128, strict <; text rows and
--                                columns), sparsity_to_width (w from the budget)
--   svg/models/wan/utils.py      Wan: band rounded up to 128, <=, and the first
--                                frame_size keys of the layout order a sink
--   svg/models/cog/utils.py      CogVideoX: as HunyuanVideo, text first
--   scripts/hyvideo/hyvideo_t2v_720p_svg.sh  budget 0.25, first 10% of steps
--                                and 3% of layers dense (floor: 5 of 50, 1 of 60)
--   scripts/wan/wan_t2v_720p_svg.sh  budget 0.3, 20% of steps, 3% of layers
--   cog_inference.py             budget 0.25, 20% of steps, 2.5% of layers
-- The width: seq = text + frames * frame_size, s = (budget seq^2 - 2 seq text)
-- / seq^2, w = seq (1 - sqrt(1 - s)) tokens, from the shape when the pattern
-- meets one (integer square root; the budget to 1e-6).
--
-- SVG decides each head's class online by the error of sampled queries
-- under each class's mask against full attention (the argmin of the mean
-- squared difference, hyvideo/attention.py sample_mse), at every sparse
-- step and layer, and so does sieve by default (`profile = true`, sieve's
-- profiling kernel, skipping the dense steps and layers): 64 rows from the
-- first 10,000 tokens on HunyuanVideo and Wan (hyvideo_t2v_inference.py,
-- wan/inference.py: num_sampled_rows 64, sample_mse_max_row 10000), 32 rows
-- from the whole sequence on CogVideoX (cog_inference.py num_sampled_rows
-- 32; cog/attention.py samples below seq_len). The masks a head is profiled
-- under are SVG's profiling masks, not the attention's bands
-- (get_attention_mask): the video cut into blocks of 128 tokens in the
-- class's order, blocks within floor(1.5 F / 128) of each other
-- (svg/models/hyvideo/utils.py at 1a384ee), text rows and columns dense; on
-- Wan within 2 F // 128 blocks plus the layout's first frame_size keys
-- (svg/models/wan/utils.py at 3ffe25f). CogVideoX's profiling masks are
-- tensors loaded from files the repository does not ship
-- (cog/utils.py), so the cogvideox preset profiles the attention's bands.
-- `profile_masks = false` profiles the attention's bands on every model
-- (sieve's own); `profile = false` gives a static split (heads alternating
-- spatial, temporal), sieve's own.
--
-- Params:
--   model        ("hunyuan") the original's model preset: hunyuan, wan, cogvideox
--                (band rounding and sink, budget and warm-up below).
--   budget       (0.25)  density budget of the whole attention map (SVG's
--                        --sparsity); wan: 0.3.
--   dense_steps  (0.1)   leading steps run dense: a count, or a fraction of
--                        `steps` (floored); wan and cogvideox: 0.2.
--   dense_layers (0.03)  leading layers run dense: a count or a fraction of
--                        `layers`; cogvideox: 0.025.
--   steps        (50)    denoising steps, for fractions.
--   layers       (60)    transformer layers, for fractions (HunyuanVideo 20
--                        double + 40 single; wan: 30, Wan 1.3B, so no dense
--                        layer, where SVG's Wan script runs 14B's 40 and
--                        keeps one: -p layers=40; cogvideox: 42).
--   text         (true)  text tokens attend to, and are attended by, every token.
--   profile      (true)  choose each head's class online (sieve's kernel).
--   samples      (64)    sampled query rows per head when profiling (a
--                        multiple of 64 runs: the kernel rounds up);
--                        cogvideox: 32.
--   every        (1)     steps between profiling runs, from the first sparse
--                        step (1: every sparse step, as SVG).
--   sample_range (10000) profiled queries come from the first this many video
--                        tokens (0: the whole sequence); cogvideox: 0.
--   profile_masks (true) profile under SVG's profiling masks (above); false:
--                        under the attention's bands; cogvideox: false.

local param = sieve.params {
  model = "hunyuan", budget = 0.25, dense_steps = 0.1, dense_layers = 0.03, steps = 50, layers = 60,
  text = true, profile = true, samples = 64, every = 1, sample_range = 10000, profile_masks = true,
}

local presets = {
  hunyuan = { budget = 0.25, dense_steps = 0.1, dense_layers = 0.03, layers = 60, round_up = false, sink = false },
  wan = { budget = 0.3, dense_steps = 0.2, dense_layers = 0.03, layers = 30, round_up = true, sink = true },
  cogvideox = { budget = 0.25, dense_steps = 0.2, dense_layers = 0.025, layers = 42, round_up = false, sink = false,
                samples = 32, sample_range = 0, profile_masks = false },
}
local preset = presets[param.model]
sieve.expect("model", preset ~= nil, "must be hunyuan, wan or cogvideox")
local function pick(name)
  if sieve.overridden(name) then return param[name] end
  if preset[name] ~= nil then return preset[name] end
  return param[name]
end
local budget, dense_steps, dense_layers, layers = pick("budget"), pick("dense_steps"), pick("dense_layers"), pick("layers")
local samples, sample_range = pick("samples"), pick("sample_range")
sieve.expect("budget", budget > 0 and budget <= 1, "must be in (0, 1]")
sieve.expect("dense_steps", dense_steps >= 0, "must be a count or a fraction in [0, 1)")
sieve.expect("dense_layers", dense_layers >= 0, "must be a count or a fraction in [0, 1)")
sieve.expect("steps", param.steps >= 1, "must be at least 1")
sieve.expect("layers", param.layers >= 1, "must be at least 1")
sieve.expect("samples", samples >= 1, "must be at least 1")
sieve.expect("every", param.every >= 1, "must be at least 1")
sieve.expect("sample_range", sample_range >= 0, "must be 0 or more")

-- sparsity_to_width in integers: w = seq - sqrt(seq^2 (1 - s)), floored.
local N, F = sieve.shape.text, sieve.shape.height * sieve.shape.width
local seq = N + sieve.shape.frames * F
local ppm = math.floor(budget * 1e6 + 0.5)
local d = seq * seq - (seq * seq * ppm) // 1000000 + 2 * seq * N
local r = sieve.isqrt(d)
local width = seq - sieve.choose((r * r):lt(d), r + 1, r)

-- Wan: the layout's first frame_size keys.
local function first_frame(transposed)
  return sieve.mask(function(q, k)
    return ~q.text & ~k.text & sieve.video_index(k, transposed):lt(F)
  end)
end

local function band(transposed)
  if not preset.round_up then return sieve.token_band(width, { transposed = transposed }) end
  -- Wan: |i - j| <= ceil(w / 128) * 128, and the first frame's keys.
  local w = (width + 127) // 128 * 128
  local m = sieve.token_band(w + 1, { transposed = transposed, round = 1 })
  return sieve.union(m, first_frame(transposed))
end

-- SVG's profiling mask: blocks of 128 video tokens in the layout's order
-- within floor(1.5 F / 128) blocks (Wan: 2 F // 128, and the first frame).
local function profile_band(transposed)
  local thr = preset.round_up and (2 * F) // 128 or (3 * F // 2) // 128
  local m = sieve.mask(function(q, k)
    local d = sieve.video_index(q, transposed) // 128 - sieve.video_index(k, transposed) // 128
    return ~q.text & ~k.text & d:abs():lt(thr)
  end)
  if preset.round_up then m = sieve.union(m, first_frame(transposed)) end
  return m
end

local function with_text(m)
  if not param.text then return m end
  return sieve.union(m, sieve.text_rows(), sieve.text_cols())
end

local selection = sieve.static
if param.profile then
  local s = math.floor(dense_steps < 1 and dense_steps * param.steps + 1e-9 or dense_steps)
  local at = {}
  for step = s, param.steps - 1, param.every do at[#at + 1] = step end
  if #at == 0 then at[1] = s end
  local masks = nil
  if pick("profile_masks") then
    masks = { spatial = with_text(profile_band(false)), temporal = with_text(profile_band(true)) }
  end
  selection = sieve.profile { samples = samples, steps = at, range = sample_range, masks = masks }
end

return sieve.pattern {
  name = "svg",
  classes = {
    { name = "spatial", layout = sieve.layout.identity, mask = with_text(band(false)) },
    { name = "temporal", layout = sieve.layout.transpose, mask = with_text(band(true)) },
  },
  heads = { "spatial", "temporal" },
  selection = selection,
  schedule = { dense_steps = dense_steps, dense_layers = dense_layers, steps = param.steps, layers = layers },
}
