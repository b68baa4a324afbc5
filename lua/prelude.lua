-- sieve's pattern DSL, loaded into every sandboxed state before the script.
--
-- The chunk gets `lp`, the expression constructors written in C
-- (lua/lp_expr.c), and `overrides`, the caller's {name = "text"} param
-- overrides. It sets the global `sieve` (all a script sees besides the safe
-- base library) and returns the loader's internals: `finish`, which turns
-- the script's result into the normalised spec that lua/lp_fill.c copies
-- into the pattern IR.
--
-- Every check raises through lp.raise, which prefixes the script's file and
-- line (the innermost script frame on the stack), so a mistake is reported
-- where the script made it, not here.

local lp, overrides = ...

local type, pairs, select, tostring, tonumber, setmetatable, rawlen =
  type, pairs, select, tostring, tonumber, setmetatable, rawlen
local mtype, tointeger, huge = math.type, math.tointeger, math.huge
local sort, concat, unpack, format = table.sort, table.concat, table.unpack, string.format
local isnode, typeof, raise, where = lp.isnode, lp.typeof, lp.raise, lp.where
local all, any, not_, choose = lp.all, lp.any, lp.not_, lp.choose

local sieve = {}

------------------------------------------------------------------ checks

local function fail(fmt, ...)
  raise("script", format(fmt, ...))
end

local function describe(v)
  local t = typeof(v)
  if t == "bool" then return "a boolean expression" end
  if t == "int" then return "an integer expression" end
  local lt = type(v)
  if lt == "nil" then return "nil" end
  if lt == "boolean" then return "the Lua boolean " .. tostring(v) end
  if lt == "number" then return "the number " .. tostring(v) end
  if lt == "string" then return format("the string %q", v) end
  return "a " .. lt
end

local function sorted_keys(t)
  local ks = {}
  for k in pairs(t) do ks[#ks + 1] = tostring(k) end
  sort(ks)
  return ks
end

-- An integer from a Lua number (2.0 counts, 2.5 does not).
local function int_arg(v, what, min, max)
  local i = type(v) == "number" and tointeger(v) or nil
  if i == nil then fail("%s must be an integer, got %s", what, describe(v)) end
  if min and i < min then fail("%s must be at least %d, got %d", what, min, i) end
  if max and i > max then fail("%s must be at most %d, got %d", what, max, i) end
  return i
end

-- An integer, or an integer expression (a window may depend on the layer).
local function int_expr(v, what, min)
  if typeof(v) == "int" then return v end
  return int_arg(v, what, min)
end

local function bool_arg(v, what, default)
  if v == nil then return default end
  if type(v) ~= "boolean" then fail("%s must be true or false, got %s", what, describe(v)) end
  return v
end

local function mask_arg(v, what)
  local t = typeof(v)
  if t == "bool" then return v end
  if t == "int" then
    local line = lp.line(v)
    fail("%s is an integer expression%s, not a mask: compare it, e.g. x:eq(0) or x:le(w)", what,
         line > 0 and format(" (made at line %d)", line) or "")
  end
  if type(v) == "boolean" then
    fail("%s is a Lua boolean, not a mask: Lua's ==, <, <=, and, or, not give Lua values; write "
         .. "a:eq(b), a:lt(b), a:le(b), &, |, ~ instead (sieve.dense() is the all-true mask)", what)
  end
  fail("%s must be a mask (a boolean expression), got %s", what, describe(v))
end

-- Checks that a table has only the keys it may have: a misspelt key is an
-- error, not a silently ignored setting.
local function opts(t, what, allowed)
  if t == nil then return {} end
  if type(t) ~= "table" then fail("%s takes a table, got %s", what, describe(t)) end
  local bad = {}
  for k in pairs(t) do
    if type(k) ~= "string" or not allowed[k] then bad[#bad + 1] = tostring(k) end
  end
  if #bad > 0 then
    sort(bad)
    fail("%s: unknown key '%s' (expected: %s)", what, bad[1], concat(sorted_keys(allowed), ", "))
  end
  return t
end

-- The length of a proper list (keys 1..n, nothing else).
local function list_arg(t, what)
  if type(t) ~= "table" then fail("%s must be a list, got %s", what, describe(t)) end
  local n = rawlen(t)
  for k in pairs(t) do
    if mtype(k) ~= "integer" or k < 1 or k > n then
      fail("%s must be a list {a, b, ...}; it has the key %s", what, tostring(k))
    end
  end
  for i = 1, n do
    if t[i] == nil then fail("%s has a hole at [%d]", what, i) end
  end
  return n
end

local function int_list(t, what, min, max)
  local out = {}
  for i = 1, list_arg(t, what) do out[i] = int_arg(t[i], format("%s[%d]", what, i), min, max) end
  return out
end

-- Sorted and without repeats, so equal sets give equal IR.
local function int_set(t, what, min, max)
  local l = int_list(t, what, min, max)
  sort(l)
  local out = {}
  for i = 1, #l do
    if i == 1 or l[i] ~= l[i - 1] then out[#out + 1] = l[i] end
  end
  return out
end

-- {t, y, x} or {t = , y = , x = }.
local function triple(v, what)
  if type(v) ~= "table" then fail("%s must be {t, y, x}, got %s", what, describe(v)) end
  local t, y, x
  if v.t ~= nil or v.y ~= nil or v.x ~= nil then
    opts(v, what, {t = true, y = true, x = true})
    t, y, x = v.t, v.y, v.x
  else
    if list_arg(v, what) ~= 3 then fail("%s must be {t, y, x}: three sizes", what) end
    t, y, x = v[1], v[2], v[3]
  end
  return int_arg(t, what .. ".t", 1, 1 << 20), int_arg(y, what .. ".y", 1, 1 << 20),
         int_arg(x, what .. ".x", 1, 1 << 20)
end

local function name_arg(v, what)
  if type(v) ~= "string" or #v == 0 or #v > 64 then
    fail("%s must be a name of 1 to 64 characters, got %s", what, describe(v))
  end
  for i = 1, #v do
    local c = v:byte(i)
    local ok = (c >= 48 and c <= 57) or (c >= 65 and c <= 90) or (c >= 97 and c <= 122)
      or c == 95 or c == 45 or c == 46
    if not ok then fail("%s: %q may use letters, digits, _ - and . only", what, v) end
  end
  return v
end

-- Read-only tokens (layouts, selections, patterns); what they stand for is
-- kept in a private table, so a script cannot forge or alter one.
local function token(label, store, value)
  local t = setmetatable({}, {
    __newindex = function() fail("%s is read-only", label) end,
    __tostring = function() return label end,
    __metatable = false,
  })
  store[t] = value
  return t
end

------------------------------------------------------------- coordinates

local function coords(side, vars)
  local fields = {}
  for field, var in pairs(vars) do fields[field] = lp.var(var) end
  local names = concat(sorted_keys(vars), ", ")
  return setmetatable({}, {
    __index = function(_, k)
      local v = fields[k]
      if v == nil then fail("%s has no field '%s' (fields: %s)", side, tostring(k), names) end
      return v
    end,
    __newindex = function() fail("%s is read-only", side) end,
    __metatable = false,
  })
end

local Q = coords("q", {t = "q.t", y = "q.y", x = "q.x", text = "q.text", index = "q.idx"})
local K = coords("k", {t = "k.t", y = "k.y", x = "k.x", text = "k.text", index = "k.idx"})
local CTX = coords("ctx", {head = "head", step = "step", layer = "layer"})

sieve.q, sieve.k, sieve.ctx = Q, K, CTX
sieve.head, sieve.step, sieve.layer = CTX.head, CTX.step, CTX.layer

-- The shape's token grid and text count, symbolic: the script runs before
-- any shape is known, and sieve binds these to the shape's numbers where a
-- mask meets a shape, folding whatever is computed from them alone. So a
-- window can be sized by the video (clamped at its edges, a budget turned
-- into a band width) with no cost per token pair.
local SHAPE = coords("sieve.shape", {frames = "frames", height = "height", width = "width", text = "text.n"})
sieve.shape = SHAPE

-- Primitives about video positions are false when either token is text.
local VIDEO = all(not_(Q.text), not_(K.text))
local function video(...)
  return all(VIDEO, ...)
end

------------------------------------------------------- logic, arithmetic

sieve.all, sieve.any, sieve.not_, sieve.choose = all, any, not_, choose
sieve.abs = lp.abs

local function fold(f, what)
  return function(a, ...)
    local acc = isnode(a) and a or lp.const(a)
    for i = 1, select("#", ...) do acc = f(acc, (select(i, ...))) end
    return acc
  end
end
sieve.min = fold(lp.min, "sieve.min")
sieve.max = fold(lp.max, "sieve.max")

------------------------------------------------------------ primitives

function sieve.dense()
  return lp.const(true)
end

-- The integer square root of a non-negative integer expression (floor),
-- by bisection over results below 2^31; for sizes derived from the shape,
-- where it folds to a constant.
function sieve.isqrt(v)
  v = int_expr(v, "sieve.isqrt: v", 0)
  -- c <= v // c stands for c * c <= v, whose constants would pass 32 bits.
  local r = lp.const(0)
  for bit = 30, 0, -1 do
    local c = r + (1 << bit)
    r = choose(c:le(v // c), c, r)
  end
  return r
end

-- How many x in [lo, hi] have x % m == r % m (m a positive integer or an
-- expression that is positive).
function sieve.count_mod(lo, hi, r, m)
  m = int_expr(m, "sieve.count_mod: m", 1)
  local lo_, hi_, r_ = isnode(lo) and lo or lp.const(lo), isnode(hi) and hi or lp.const(hi),
                       isnode(r) and r or lp.const(r)
  return sieve.max(0, (hi_ - r_) // m - (lo_ - 1 - r_) // m)
end

-- A video token's index in frame-major order (t, y, x), or with
-- transposed = true in position-major order (y, x, t): the order of the
-- identity and transpose layouts, over the video tokens only.
function sieve.video_index(c, transposed)
  local H, W, T = SHAPE.height, SHAPE.width, SHAPE.frames
  if transposed then return (c.y * W + c.x) * T + c.t end
  return (c.t * H + c.y) * W + c.x
end

-- Sparse VideoGen's band: video tokens i, j with |i - j| < w rounded down
-- to a multiple of `round` (128), indices in frame-major order, or in
-- position-major order with transposed = true. w may be an expression of
-- the shape (a budget's width).
function sieve.token_band(w, t)
  local what = "sieve.token_band"
  w = int_expr(w, what .. ": w", 0)
  t = opts(t, what, {transposed = true, round = true})
  local tr = bool_arg(t.transposed, what .. ": transposed", false)
  local round = int_arg(t.round == nil and 128 or t.round, what .. ": round", 1)
  local band = (w // round) * round
  return video((sieve.video_index(Q, tr) - sieve.video_index(K, tr)):abs():lt(band))
end

-- |q.index - k.index| <= w over all tokens, text included.
function sieve.token_window(w)
  w = int_expr(w, "sieve.token_window: w", 0)
  return (Q.index - K.index):abs():le(w)
end

-- |q.t - k.t| <= w.
function sieve.frame_window(w)
  w = int_expr(w, "sieve.frame_window: w", 0)
  return video((Q.t - K.t):abs():le(w))
end

-- Sliding tile attention: the video is cut into tiles of tile = {tt, ty, tx}
-- tokens; a query sees the keys whose tile is within wt, wy, wx tiles of its
-- own tile along t, y, x (a window of 2w+1 tiles per axis, centred on the
-- query's tile). With the default tile {1, 1, 1} it is a 3-D token window.
-- With {clamp = true} the window's centre is clamped to stay w tiles inside
-- the grid (STA), so queries at the edges see as many tiles as any other;
-- a ragged last tile counts as a tile.
function sieve.tile_window(wt, wy, wx, tile, t)
  local what = "sieve.tile_window"
  wt = int_expr(wt, what .. ": wt", 0)
  wy = int_expr(wy, what .. ": wy", 0)
  wx = int_expr(wx, what .. ": wx", 0)
  local tt, ty, tx = 1, 1, 1
  if tile ~= nil then tt, ty, tx = triple(tile, what .. ": tile") end
  t = opts(t, what, {clamp = true})
  local clamp = bool_arg(t.clamp, what .. ": clamp", false)
  local function near(qc, kc, size, w, n)
    local c = qc // size
    if clamp then
      local tiles = (n + size - 1) // size
      c = sieve.min(sieve.max(c, w), tiles - 1 - w)
    end
    return (c - (kc // size)):abs():le(w)
  end
  return video(near(Q.t, K.t, tt, wt, SHAPE.frames), near(Q.y, K.y, ty, wy, SHAPE.height),
               near(Q.x, K.x, tx, wx, SHAPE.width))
end

local function in_frames(c, frames)
  local terms = {}
  for i = 1, #frames do terms[i] = c:eq(frames[i]) end
  return any(unpack(terms))
end

-- Global anchors: keys in `frames` are seen by every video query and, with
-- both (default), queries in `frames` see every video key; text = true adds
-- the text tokens as anchors (every query sees them; with both, they see
-- every key).
local function anchors(t)
  local what = "sieve.anchors"
  t = opts(t, what, {frames = true, text = true, both = true})
  local frames = int_set(t.frames or {}, what .. ": frames", 0)
  local text = bool_arg(t.text, what .. ": text", false)
  local both = bool_arg(t.both, what .. ": both", true)
  if #frames == 0 and not text then fail("%s: no anchors (give frames and/or text = true)", what) end
  local parts = {}
  if #frames > 0 then
    local m = in_frames(K.t, frames)
    if both then m = m | in_frames(Q.t, frames) end
    parts[#parts + 1] = video(m)
  end
  if text then
    parts[#parts + 1] = K.text
    if both then parts[#parts + 1] = Q.text end
  end
  return any(unpack(parts))
end
sieve.anchors = anchors

function sieve.global_frames(frames)
  return anchors({frames = frames})
end

-- LVSA's rotating anchors: frame f is an anchor at (step, layer) when
-- (f + stride*step + layer_stride*layer + offset) % period == 0, so the
-- anchor grid moves between steps and layers instead of staying fixed.
function sieve.rotating_anchors(t)
  local what = "sieve.rotating_anchors"
  t = opts(t, what, {period = true, stride = true, layer_stride = true, offset = true, both = true})
  local period = int_arg(t.period, what .. ": period", 1)
  local stride = int_expr(t.stride == nil and 1 or t.stride, what .. ": stride")
  local lstride = int_expr(t.layer_stride == nil and 1 or t.layer_stride, what .. ": layer_stride")
  local offset = int_expr(t.offset == nil and 0 or t.offset, what .. ": offset")
  local both = bool_arg(t.both, what .. ": both", true)
  local shift = CTX.step * stride + CTX.layer * lstride + offset
  local m = ((K.t + shift) % period):eq(0)
  if both then m = m | ((Q.t + shift) % period):eq(0) end
  return video(m)
end

function sieve.spatial()
  return video(Q.t:eq(K.t))
end

function sieve.temporal()
  return video(Q.y:eq(K.y), Q.x:eq(K.x))
end

function sieve.causal_frames()
  return video(K.t:le(Q.t))
end

function sieve.text_rows()
  return Q.text
end

function sieve.text_cols()
  return K.text
end

----------------------------------------------------------- combinators

-- Masks given as arguments, or as one list: sieve.union(a, b) or
-- sieve.union{a, b}.
local function masks(what, ...)
  local n, args = select("#", ...), {...}
  if n == 1 and type(args[1]) == "table" then
    args = args[1]
    n = list_arg(args, what)
  end
  if n == 0 then fail("%s needs at least one mask", what) end
  for i = 1, n do mask_arg(args[i], format("%s: mask %d", what, i)) end
  return unpack(args, 1, n)
end

function sieve.union(...)
  return any(masks("sieve.union", ...))
end

function sieve.intersection(...)
  return all(masks("sieve.intersection", ...))
end

function sieve.difference(a, b)
  return mask_arg(a, "sieve.difference: a") & not_(mask_arg(b, "sieve.difference: b"))
end

-- Head h uses list[h % n + 1]; a function gets the symbolic head.
function sieve.per_head(v)
  local what = "sieve.per_head"
  if type(v) == "function" then return mask_arg(v(CTX.head), what .. ": the function's result") end
  if type(v) ~= "table" then fail("%s takes a list of masks or function(h), got %s", what, describe(v)) end
  local n = list_arg(v, what)
  if n == 0 then fail("%s needs at least one mask", what) end
  for i = 1, n do mask_arg(v[i], format("%s: mask %d", what, i)) end
  local slot = CTX.head % n
  local m = v[n]
  for i = n - 1, 1, -1 do m = choose(slot:eq(i - 1), v[i], m) end
  return m
end

local function traced(what, fn, ...)
  if type(fn) ~= "function" then fail("%s takes a function, got %s", what, describe(fn)) end
  return mask_arg(fn(...), what .. ": the function's result")
end

function sieve.mask(fn)
  return traced("sieve.mask", fn, Q, K, CTX)
end

function sieve.keys(fn)
  return traced("sieve.keys", fn, K, CTX)
end

function sieve.queries(fn)
  return traced("sieve.queries", fn, Q, CTX)
end

---------------------------------------------------- layouts, selections

local layouts = setmetatable({}, {__mode = "k"})
local selections = setmetatable({}, {__mode = "k"})

local IDENTITY = token("sieve.layout.identity", layouts, {kind = lp.LAYOUT_IDENTITY, tile = {0, 0, 0}})
sieve.layout = {
  identity = IDENTITY,
  transpose = token("sieve.layout.transpose", layouts, {kind = lp.LAYOUT_TRANSPOSE, tile = {0, 0, 0}}),
  -- kind -1: the table builder picks a layout per shape (codegen/tables/cg_layout_auto.c).
  auto = token("sieve.layout.auto", layouts, {kind = -1, tile = {0, 0, 0}}),
  tile = function(v)
    local t, y, x = triple(v, "sieve.layout.tile")
    return token(format("sieve.layout.tile{%d, %d, %d}", t, y, x), layouts,
                 {kind = lp.LAYOUT_TILE, tile = {t, y, x}})
  end,
}

local STATIC = token("sieve.static", selections,
                     {kind = lp.SELECT_STATIC, recall = 1, topk = 0, sparsity = 0, samples = 0, range = 0, mode = 0,
                      file = "", steps = {}, levels = {}, tiers = 0, text_sink = 0, cache_lse = 0})
sieve.static = STATIC

local function steps_arg(v, what)
  if v == nil then fail("%s: steps is required (the denoising steps that search)", what) end
  local steps = int_set(v, what .. ": steps", 0)
  if #steps == 0 then fail("%s: steps is empty", what) end
  return steps
end

-- Block sizes in tokens, coarse to fine, each a multiple of the next.
local function levels_arg(v, what)
  local levels = int_list(v or {}, what .. ": levels", 16, 1 << 16)
  for i = 1, #levels do
    if levels[i] % 16 ~= 0 then fail("%s: levels[%d] = %d is not a multiple of 16", what, i, levels[i]) end
    if i > 1 and (levels[i] >= levels[i - 1] or levels[i - 1] % levels[i] ~= 0) then
      fail("%s: levels must go coarse to fine, each dividing the one before (%d then %d)", what,
           levels[i - 1], levels[i])
    end
  end
  return levels
end

-- AdaSpa: block attention mass from the cached LSE, searched at `steps` and
-- reused in between. With `sparsity` s (AdaSpa's top-k) every query block
-- keeps its ceil((1 - s) * nk) heaviest key blocks, nk the key blocks of
-- the row; otherwise (sieve's top-p) the smallest set of key blocks holding
-- `recall` of its mass, capped at topk blocks when topk > 0.
-- tiers = r (top-k only): AdaSpa's head-adaptive tiers, measured at the
-- first search: the n heads whose recall at s exceeds r move to sparsity
-- (1 + s) / 2, the n of lowest recall to (3s - 1) / 2 (n at most half the
-- heads). text_sink: blocks holding valid text, as query or key, are always
-- kept. cache_lse: searches after the first take their masses from the
-- first search's LSE, with no dense pass.
function sieve.search(t)
  local what = "sieve.search"
  t = opts(t, what, {recall = true, topk = true, sparsity = true, steps = true, levels = true, tiers = true,
                     text_sink = true, cache_lse = true})
  local recall = t.recall == nil and 0.9 or t.recall
  if type(recall) ~= "number" or not (recall > 0 and recall <= 1) then
    fail("%s: recall must be a number in (0, 1], got %s", what, describe(recall))
  end
  local sparsity = t.sparsity == nil and 0 or t.sparsity
  if type(sparsity) ~= "number" or not (sparsity >= 0 and sparsity < 1) then
    fail("%s: sparsity must be a number in [0, 1), got %s", what, describe(sparsity))
  end
  if sparsity > 0 and (t.recall ~= nil or t.topk ~= nil) then
    fail("%s: sparsity (top-k) takes no recall or topk (top-p)", what)
  end
  local tiers = t.tiers == nil and 0 or t.tiers
  if type(tiers) ~= "number" or not (tiers >= 0 and tiers < 1) then
    fail("%s: tiers must be a recall in [0, 1) (0: off), got %s", what, describe(tiers))
  end
  if tiers > 0 and sparsity == 0 then fail("%s: tiers needs a top-k sparsity", what) end
  return token(what, selections, {
    kind = lp.SELECT_SEARCH, recall = recall, topk = int_arg(t.topk or 0, what .. ": topk", 0),
    sparsity = sparsity, samples = 0, range = 0, mode = 0, file = "", steps = steps_arg(t.steps, what),
    levels = levels_arg(t.levels, what), tiers = tiers,
    text_sink = bool_arg(t.text_sink, what .. ": text_sink", false) and 1 or 0,
    cache_lse = bool_arg(t.cache_lse, what .. ": cache_lse", false) and 1 or 0,
  })
end

-- SVG: `samples` sampled query rows per head decide each head's class at
-- `steps`, drawn from the first `range` video tokens (SVG's
-- sample_mse_max_row; 0: from the whole sequence). `mode`: "online" (each
-- head runs in its class of least error), "search" (the errors are kept for
-- a mask-search file and the step runs full attention: STA's search) or
-- "file" (the classes come from the mask-search `file`, nothing is
-- profiled: STA's inference).
local profile_modes = { online = 0, search = 1, file = 2 }
function sieve.profile(t)
  local what = "sieve.profile"
  t = opts(t, what, {samples = true, steps = true, range = true, mode = true, file = true, masks = true})
  local mode = profile_modes[t.mode or "online"]
  if mode == nil then fail('%s: mode must be "online", "search" or "file", got %s', what, describe(t.mode)) end
  local file = t.file or ""
  if type(file) ~= "string" then fail("%s: file must be a path, got %s", what, describe(file)) end
  if (mode == 2) ~= (file ~= "") then fail('%s: a file goes with mode = "file", and only with it', what) end
  -- masks = {class = mask, ...}: what each class is profiled under, where
  -- it is not the class's own mask (sieve.pattern checks the names).
  local masks = t.masks
  if masks ~= nil then
    if type(masks) ~= "table" then fail("%s: masks must map class names to masks, got %s", what, describe(masks)) end
    if mode == 2 then fail('%s: masks go with profiling; mode = "file" profiles nothing', what) end
    for name, m in pairs(masks) do
      if type(name) ~= "string" then fail("%s: masks must map class names to masks, got key %s", what, describe(name)) end
      mask_arg(m, format("%s: masks.%s", what, name))
    end
  end
  return token(what, selections, {
    masks = masks,
    kind = lp.SELECT_PROFILE, recall = 1, topk = 0, sparsity = 0,
    samples = int_arg(t.samples == nil and 64 or t.samples, what .. ": samples", 1, 1 << 20),
    range = int_arg(t.range or 0, what .. ": range", 0, 1 << 30),
    mode = mode, file = file, steps = steps_arg(t.steps, what), levels = {}, tiers = 0, text_sink = 0,
    cache_lse = 0,
  })
end

---------------------------------------------------------------- params

local declared  -- the param list, once sieve.params has run

local function parse_override(name, text, default)
  local t = type(default)
  if t == "number" then
    local v = tonumber(text)
    if v == nil or v ~= v or v == huge or v == -huge then
      raise("arg", format("param '%s' takes a number, got '%s'", name, text))
    end
    if mtype(default) == "integer" then
      v = tointeger(v)
      if v == nil then raise("arg", format("param '%s' takes an integer, got '%s'", name, text)) end
    end
    return v
  elseif t == "boolean" then
    if text == "true" or text == "1" or text == "yes" or text == "on" then return true end
    if text == "false" or text == "0" or text == "no" or text == "off" then return false end
    raise("arg", format("param '%s' takes true or false, got '%s'", name, text))
  end
  return text
end

-- sieve.expect("budget", param.budget > 0 and param.budget <= 1, "must be in (0, 1]"):
-- a value the method does not define is refused, naming the param, its
-- value and the script's line, like a malformed override.
function sieve.expect(name, ok, must)
  if type(name) ~= "string" then fail("sieve.expect: name must be a param name, got %s", describe(name)) end
  if ok then return end
  local v = "?"
  if declared then
    for i = 1, #declared do
      if declared[i].name == name then v = tostring(declared[i].value) end
    end
  end
  raise("arg", format("param '%s' %s, got %s", name, must, v))
end

-- Whether the caller overrode param `name` (a model preset fills the rest).
function sieve.overridden(name)
  if not declared then fail("sieve.overridden: call sieve.params first") end
  for i = 1, #declared do
    if declared[i].name == name then return declared[i].overridden end
  end
  fail("sieve.overridden: unknown param '%s'", tostring(name))
end

-- local param = sieve.params{window = 1, ...}: declares the params with their
-- defaults and returns their values, overrides applied. Reading an
-- undeclared param is an error, so a misspelt name cannot go unnoticed.
function sieve.params(decl)
  if declared then fail("sieve.params may be called only once") end
  if type(decl) ~= "table" then
    fail("sieve.params takes a table {name = default, ...}, got %s", describe(decl))
  end
  local names = {}
  for name, v in pairs(decl) do
    name_arg(name, "sieve.params: a param name")
    local t = type(v)
    if t ~= "number" and t ~= "boolean" and t ~= "string" then
      fail("sieve.params: param '%s' must default to a number, boolean or string, got %s", name, describe(v))
    end
    if t == "number" and (v ~= v or v == huge or v == -huge) then
      fail("sieve.params: param '%s' must have a finite default", name)
    end
    names[#names + 1] = name
  end
  sort(names)
  local list = #names > 0 and concat(names, ", ") or "none"
  local unknown = sorted_keys(overrides)
  for i = 1, #unknown do
    local name = unknown[i]
    if decl[name] == nil then raise("arg", format("unknown param '%s' (this pattern's params: %s)", name, list)) end
  end
  local values = {}
  declared = {}
  for i = 1, #names do
    local name = names[i]
    local v, over = decl[name], overrides[name] ~= nil
    if over then v = parse_override(name, overrides[name], v) end
    values[name] = v
    declared[i] = {name = name, value = v, overridden = over}
  end
  return setmetatable({}, {
    __index = function(_, k)
      local v = values[k]
      if v == nil then fail("unknown param '%s' (declared: %s)", tostring(k), list) end
      return v
    end,
    __newindex = function(_, k) fail("params are read-only (assigning '%s')", tostring(k)) end,
    __metatable = false,
  })
end

--------------------------------------------------------------- pattern

local specs = setmetatable({}, {__mode = "k"})

-- Shortest p with c[i] == c[i - p] for all i > p (the prefix function).
local function shortest_period(c, n)
  local pi, k = {[1] = 0}, 0
  for i = 2, n do
    while k > 0 and c[k + 1] ~= c[i] do k = pi[k] end
    if c[k + 1] == c[i] then k = k + 1 end
    pi[i] = k
  end
  return n - pi[n]
end

-- Head -> class index (0-based), as its shortest period.
local function heads_arg(v, index, nclasses)
  local what = "sieve.pattern: heads"
  if v == nil then
    if nclasses > 1 then
      fail("%s is required with several classes: a list of class names (cycled over the heads) "
           .. "or function(h) returning one", what)
    end
    return {0}
  end
  local names = concat(sorted_keys(index), ", ")
  local function class_of(name, w)
    local i = type(name) == "string" and index[name] or nil
    if i == nil then fail("%s must name a class (%s), got %s", w, names, describe(name)) end
    return i
  end
  local c, n, p = {}, 0, 0
  if type(v) == "function" then
    n = lp.MAX_HEADS
    for h = 0, n - 1 do c[h + 1] = class_of(v(h), format("%s(%d)", what, h)) end
    p = shortest_period(c, n)
  else
    n = list_arg(v, what)
    if n == 0 or n > lp.MAX_HEADS then fail("%s must list 1 to %d class names", what, lp.MAX_HEADS) end
    for i = 1, n do c[i] = class_of(v[i], format("%s[%d]", what, i)) end
    p = shortest_period(c, n)
    if n % p ~= 0 then p = n end  -- a cycled list repeats with a period dividing its length
  end
  return {unpack(c, 1, p)}
end

local function layout_arg(v, what)
  if v == nil then return layouts[IDENTITY] end
  local l = type(v) == "table" and layouts[v] or nil
  if not l then
    fail("%s must be sieve.layout.identity, sieve.layout.transpose, sieve.layout.tile{t, y, x} or sieve.layout.auto, got %s",
         what, describe(v))
  end
  return l
end

-- Block sizes the kernels can run: a CTA covers 64 or 128 query rows and
-- steps through keys 32, 64 or 128 at a time, so a query block is a
-- multiple of 64 and a key block a multiple of 32 (the tables themselves
-- could take any multiple of 16, but no kernel would run them).
-- 0: the pattern leaves its blocks to the kernels (tables follow the tile
-- a plan runs, cg_attn_table_blocks; 128 where they cannot).
local function block_arg(v, what, unit, why)
  if v == nil then return 0 end
  local b = int_arg(v, what, 1, 1024)
  if b % unit ~= 0 then fail("%s must be a multiple of %d (%s), got %d", what, unit, why, b) end
  return b
end

local function classes_arg(t, what)
  local classes, index = {}, {}
  if t.mask ~= nil then
    if t.classes ~= nil then fail("%s: give mask or classes, not both", what) end
    if t.heads ~= nil then fail("%s: heads chooses among classes; a single mask has none", what) end
    classes[1] = {name = "default", layout = layout_arg(t.layout, what .. ": layout"),
                  mask = mask_arg(t.mask, what .. ": mask")}
    index.default = 0
    return classes, index
  end
  if t.classes == nil then fail("%s needs a mask (or classes)", what) end
  if t.layout ~= nil then fail("%s: with classes, layout belongs in each class", what) end
  local n = list_arg(t.classes, what .. ": classes")
  if n == 0 or n > 256 then fail("%s: classes must list 1 to 256 classes", what) end
  for i = 1, n do
    local w = format("%s: classes[%d]", what, i)
    local c = opts(t.classes[i], w, {name = true, layout = true, mask = true})
    local name = name_arg(c.name, w .. ".name")
    if index[name] then fail("%s: two classes are named '%s'", what, name) end
    index[name] = i - 1
    classes[i] = {name = name, layout = layout_arg(c.layout, w .. ".layout"), mask = mask_arg(c.mask, w .. ".mask")}
  end
  return classes, index
end

local PATTERN_KEYS = {
  name = true, block = true, geometry = true, mask = true, layout = true,
  classes = true, heads = true, selection = true, schedule = true,
}

-- A count, or a fraction of `total` (floored, as SVG's first_times_fp and
-- first_layers_fp are): 10 or 0.1 with total = 50 both give 5... and 10.
local function dense_count(v, total, what, total_name)
  if v == nil then return 0 end
  if type(v) ~= "number" then fail("%s must be a number, got %s", what, describe(v)) end
  if mtype(v) == "integer" then return int_arg(v, what, 0, 1 << 20) end
  if not (v >= 0 and v < 1) then
    fail("%s must be a whole count or a fraction in [0, 1), got %s", what, tostring(v))
  end
  if total == nil then fail("%s is a fraction: give %s, the count it is a fraction of", what, total_name) end
  return math.floor(v * int_arg(total, "sieve.pattern: schedule." .. total_name, 1, 1 << 20) + 1e-9)
end

local function schedule_arg(v, what)
  local t = opts(v, what, {dense_steps = true, dense_layers = true, steps = true, layers = true})
  return dense_count(t.dense_steps, t.steps, what .. ".dense_steps", "steps"),
         dense_count(t.dense_layers, t.layers, what .. ".dense_layers", "layers")
end

function sieve.pattern(t)
  local what = "sieve.pattern"
  if type(t) ~= "table" then fail("%s takes a table, got %s", what, describe(t)) end
  if t.params ~= nil then
    fail("%s: declare params with `local param = sieve.params{...}` at the top of the script", what)
  end
  opts(t, what, PATTERN_KEYS)
  local spec = {line = where(), name = name_arg(t.name, what .. ": name")}
  local block = opts(t.block, what .. ": block", {q = true, k = true})
  spec.block_q = block_arg(block.q, what .. ": block.q", 64, "kernels take 64 or 128 query rows per CTA")
  spec.block_k = block_arg(block.k, what .. ": block.k", 32, "kernels step through keys 32, 64 or 128 at a time")
  local geo = opts(t.geometry, what .. ": geometry",
                   {frames = true, height = true, width = true, text = true, text_pos = true})
  for _, f in ipairs {"frames", "height", "width"} do
    spec[f] = geo[f] == nil and -1 or int_arg(geo[f], what .. ": geometry." .. f, 1, 1 << 20)
  end
  spec.text = geo.text == nil and -1 or int_arg(geo.text, what .. ": geometry.text", 0, 1 << 24)
  spec.text_after = -1
  if geo.text_pos == "before" then
    spec.text_after = 0
  elseif geo.text_pos == "after" then
    spec.text_after = 1
  elseif geo.text_pos ~= nil then
    fail('%s: geometry.text_pos must be "before" or "after", got %s', what, describe(geo.text_pos))
  end
  spec.dense_steps, spec.dense_layers = schedule_arg(t.schedule, what .. ": schedule")
  local index
  spec.classes, index = classes_arg(t, what)
  spec.heads = heads_arg(t.heads, index, #spec.classes)
  local sel = STATIC
  if t.selection ~= nil then sel = t.selection end
  spec.sel = type(sel) == "table" and selections[sel] or nil
  if not spec.sel then
    fail("%s: selection must be sieve.static, sieve.search{...} or sieve.profile{...}, got %s", what,
         describe(sel))
  end
  if spec.sel.masks ~= nil then
    -- Profiling masks in class order; a copy, as one selection may serve
    -- patterns of other classes.
    local pm, copy = {}, {}
    for name in pairs(spec.sel.masks) do
      if index[name] == nil then fail("%s: sieve.profile's masks name '%s', which is no class", what, name) end
    end
    for i, c in ipairs(spec.classes) do
      pm[i] = spec.sel.masks[c.name]
      if pm[i] == nil then fail("%s: sieve.profile's masks give no mask for class '%s'", what, c.name) end
    end
    for k, v in pairs(spec.sel) do copy[k] = v end
    copy.masks, copy.pmasks = nil, pm
    spec.sel = copy
  end
  return token(format("sieve.pattern(%s)", spec.name), specs, spec)
end

----------------------------------------------------------------- loader

-- The script's result as the spec lp_fill reads; last_line places errors
-- about a missing result at the end of the script.
local function finish(result, last_line)
  local spec = type(result) == "table" and specs[result] or nil
  if not spec then
    raise("script", "the script must end with `return sieve.pattern{...}`; it returned " .. describe(result),
          last_line)
  end
  if not declared then
    local unknown = sorted_keys(overrides)
    if unknown[1] then
      raise("arg", format("unknown param '%s': the pattern declares no params", unknown[1]), spec.line)
    end
  end
  spec.params = declared or {}
  return spec
end

_G.sieve = sieve
return {finish = finish}
