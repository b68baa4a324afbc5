-- sta: Sliding Tile Attention (STA, arXiv 2502.04507). The video is cut
-- into 3-D tiles of tile_t x tile_y x tile_x tokens, laid out so that each
-- tile is contiguous; a query attends to the keys whose tile lies within
-- win_t, win_y, win_x tiles of the window centre on each axis: the query's
-- own tile, clamped so that the window stays inside the video (queries at
-- the edges see as many tiles as any other). With the tiles lined up with
-- the blocks every block pair is either inside or outside the window.
--
-- Follows hao-ai-lab/FastVideo at 2f3d4074064e4d86f99dc784ebbaa296e6f5925f:
--   fastvideo-kernel/tests/support_flex_sta.py  generate_sta_mask: kernel size
--     in tiles, centre = clamp(q_tile, k // 2, tiles - 1 - k // 2), video to
--     video within k // 2 of the centre, video to text and text to all
--   fastvideo/v1/attention/backends/sliding_tile_attn.py (at cbb4264b7c46):
--     tiles (6, 8, 8), the text length from the prompt's attention mask
-- HunyuanVideo's setting: tiles (6, 8, 8), a window of (3, 3, 3) tiles, i.e.
-- win = 1 on each axis. The text padding past the prompt's real length is
-- masked through the kernel's text-length argument.
--
-- STA's mask search (FastVideo's archived branch sta_do_not_delete at
-- e4de776: fastvideo/attention/backends/sliding_tile_attn.py forward, the
-- L2 loss of each candidate window against full attention per head;
-- STA_configuration.py select_best_mask_strategy, the least loss averaged
-- over the prompts, full attention for the first 12 steps;
-- pipelines/stages/denoising.py, the candidates for Wan at 69x768x1280:
-- "3,1,10" "1,5,7" "3,3,3" "1,6,5" "1,3,10" "3,6,1", kernel sizes in tiles):
--   search = true   one head class per candidate; at each sparse step and
--                   layer sieve's profiling kernel measures each head's
--                   error under every candidate, the step runs full
--                   attention (as STA's search does), and
--                   sieve_dynplan_save_search writes the mask-search file
--                   (the least summed error per step, layer and head).
--   strategy = FILE each (step, layer, head) runs the window the file
--                   chose; a file for another shape or other candidates,
--                   a damaged one, or a sparse step it does not hold is
--                   refused. STA's own tuned strategy (JSON) becomes such
--                   a file through python/sieve/sta_strategy.py.
-- What differs: STA's loss is over every query row, sieve's over `samples`
-- sampled rows (all tokens, text included); a kernel size k means k // 2
-- tiles on each side of the clamped centre, as generate_sta_mask reads it,
-- so an even k covers k + 1 tiles where the grid has them. A ragged last
-- tile counts as a tile (STA's grids divide evenly). clamp = false gives
-- sieve's earlier centred window.
--
-- Params:
--   tile_t, tile_y, tile_x (6, 8, 8) tile size in frames, rows, columns.
--   win_t, win_y, win_x    (1, 1, 1) tiles on each side of the centre (one
--                                    window for every head).
--   clamp                  (true)    clamp the centre at the edges (STA).
--   dense_steps            (12)      leading denoising steps run dense.
--   text                   (true)    text tokens attend to, and are attended
--                                    by, every token (STA keeps text dense).
--   candidates ("3,1,10 1,5,7 3,3,3 1,6,5 1,3,10 3,6,1") the mask search's
--                                    windows, kernel sizes t,y,x in tiles,
--                                    separated by blanks or ';'.
--   search                 (false)   the mask search (above).
--   strategy               ("")      a mask-search file to run (above).
--   steps                  (50)      denoising steps (the searched ones:
--                                    dense_steps .. steps - 1).
--   samples                (64)      query rows sampled per head by the search.

local param = sieve.params {
  tile_t = 6, tile_y = 8, tile_x = 8, win_t = 1, win_y = 1, win_x = 1, clamp = true,
  dense_steps = 12, text = true, candidates = "3,1,10 1,5,7 3,3,3 1,6,5 1,3,10 3,6,1",
  search = false, strategy = "", steps = 50, samples = 64,
}
for _, n in ipairs { "tile_t", "tile_y", "tile_x" } do sieve.expect(n, param[n] >= 1, "must be at least 1") end
for _, n in ipairs { "win_t", "win_y", "win_x", "dense_steps" } do sieve.expect(n, param[n] >= 0, "must be 0 or more") end
sieve.expect("steps", param.steps > param.dense_steps, "must be above dense_steps")
sieve.expect("samples", param.samples >= 1, "must be at least 1")
sieve.expect("strategy", not (param.search and param.strategy ~= ""), "goes without search = true (one reads, the other writes)")

local tile = { param.tile_t, param.tile_y, param.tile_x }
local function window(wt, wy, wx)
  local mask = sieve.tile_window(wt, wy, wx, tile, { clamp = param.clamp })
  if param.text then mask = sieve.union(mask, sieve.text_rows(), sieve.text_cols()) end
  return mask
end

-- "3,1,10 1,5,7" -> { {3, 1, 10}, {1, 5, 7} } (the sandbox has no string patterns).
local function kernel_sizes(text)
  local must = "must be kernel sizes t,y,x in tiles, separated by blanks or ';'"
  local list, nums, cur = {}, {}, nil
  for i = 1, #text + 1 do
    local b = i <= #text and string.byte(text, i) or 32
    if b >= 48 and b <= 57 then
      cur = (cur or 0) * 10 + (b - 48)
    elseif b == 44 then  -- ','
      sieve.expect("candidates", cur ~= nil and #nums < 2, must)
      nums[#nums + 1], cur = cur, nil
    else
      sieve.expect("candidates", b == 32 or b == 59 or b == 9, must)
      if cur ~= nil then nums[#nums + 1], cur = cur, nil end
      if #nums > 0 then
        sieve.expect("candidates", #nums == 3, must)
        list[#list + 1], nums = nums, {}
      end
    end
  end
  return list
end

-- One class per candidate kernel size, named 3x1x10 for STA's "3,1,10";
-- checked also when no search reads them, so a bad list is never silent.
local candidates, seen = {}, {}
for _, k in ipairs(kernel_sizes(param.candidates)) do
  local kt, ky, kx = k[1], k[2], k[3]
  sieve.expect("candidates", kt >= 1 and ky >= 1 and kx >= 1, "sizes must be at least 1 tile")
  local name = kt .. "x" .. ky .. "x" .. kx
  sieve.expect("candidates", not seen[name], "name each window once")
  seen[name] = true
  candidates[#candidates + 1] = { name = name, win = { kt // 2, ky // 2, kx // 2 } }
end
sieve.expect("candidates", #candidates >= 1, "must name at least one window")

local selection, classes, heads = sieve.static, nil, nil
if param.search or param.strategy ~= "" then
  classes = {}
  for _, c in ipairs(candidates) do
    classes[#classes + 1] = { name = c.name, layout = sieve.layout.tile(tile), mask = window(c.win[1], c.win[2], c.win[3]) }
    if c.name == "3x3x3" or not heads then heads = { c.name } end
  end
  local at = {}
  for step = param.dense_steps, param.steps - 1 do at[#at + 1] = step end
  if param.search then
    selection = sieve.profile { samples = param.samples, steps = at, range = 0, mode = "search" }
  else
    selection = sieve.profile { samples = param.samples, steps = at, mode = "file", file = param.strategy }
  end
end

return sieve.pattern {
  name = "sta",
  block = { q = 128, k = 128 },
  layout = not classes and sieve.layout.tile(tile) or nil,
  mask = not classes and window(param.win_t, param.win_y, param.win_x) or nil,
  classes = classes,
  heads = heads,
  selection = selection,
  schedule = { dense_steps = param.dense_steps },
}
