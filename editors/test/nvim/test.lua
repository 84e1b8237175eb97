-- Headless Neovim test of the infill plugin against the real server and model.
-- Run: nvim --headless --clean -S test.lua   with env:
--   INFILL_PLUGIN  the plugin folder (editors/nvim)
--   INFILL_BIN     the infill binary
--   INFILL_FIXTURE a copy of the fixture workspace
--   INFILL_EXPECT_MODE  "builtin" or "plugin": the ghost-text path this Neovim must take
--   INFILL_RESULTS a file to which one line per check is appended: "PASS name" / "FAIL name: why"
--   XDG_STATE_HOME the server's statistics store is under it (infill/events.jsonl)
--   INFILL_STATS_CHECKPOINTS the server's checkpoints (seconds), the first a few seconds
local env = vim.env
vim.opt.rtp:prepend(env.INFILL_PLUGIN)
vim.cmd("runtime! plugin/infill.lua")
vim.o.expandtab = true
vim.o.shiftwidth = 4
vim.o.softtabstop = 4
vim.o.swapfile = false
vim.cmd("filetype plugin indent on")

local results = assert(io.open(env.INFILL_RESULTS, "a"))
local failed = 0
local function record(ok, name, why)
  if ok then
    results:write("PASS " .. name .. "\n")
  else
    failed = failed + 1
    results:write("FAIL " .. name .. ": " .. tostring(why):gsub("\n", "\\n") .. "\n")
  end
  results:flush()
end

local version = vim.version()
local tag = string.format("nvim %d.%d", version.major, version.minor)

require("infill").setup({
  cmd = { env.INFILL_BIN, "serve" },
  settings = {
    model = { threads = 2, contextSize = 1024 },
    completion = { maxTokens = 24, loadWaitMs = 60000 },
  },
  debounce_ms = 50,
})

local co
local function sleep(ms)
  vim.defer_fn(function()
    local ok, err = coroutine.resume(co)
    if not ok then
      record(false, tag .. " script", err)
      vim.cmd("cquit 1")
    end
  end, ms)
  coroutine.yield()
end

local function wait_for(cond, timeout_ms)
  local waited = 0
  while waited < timeout_ms do
    local v = cond()
    if v then
      return v
    end
    sleep(50)
    waited = waited + 50
  end
  return nil
end

local function feed(keys)
  vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes(keys, true, false, true), "mt", false)
end

local mode = env.INFILL_EXPECT_MODE
local ns_name = mode == "builtin" and "nvim.lsp.inline_completion" or "infill.ghost"

-- The ghost text shown in the current buffer: { row, col, text } or nil.
local function ghost()
  local ns = vim.api.nvim_get_namespaces()[ns_name]
  if not ns then
    return nil
  end
  local marks = vim.api.nvim_buf_get_extmarks(0, ns, 0, -1, { details = true })
  for _, m in ipairs(marks) do
    local d = m[4]
    if d.virt_text and d.virt_text[1] then
      local parts = {}
      for _, chunk in ipairs(d.virt_text) do
        parts[#parts + 1] = chunk[1]
      end
      local text = table.concat(parts)
      for _, vl in ipairs(d.virt_lines or {}) do
        local lp = {}
        for _, chunk in ipairs(vl) do
          lp[#lp + 1] = chunk[1]
        end
        text = text .. "\n" .. table.concat(lp)
      end
      if text ~= "" then
        return { row = m[2], col = m[3], text = text }
      end
    end
  end
  return nil
end

-- The statistics store the server writes: its events, decoded.
local store = (env.XDG_STATE_HOME or "") .. "/infill/events.jsonl"
local first_checkpoint = tonumber((env.INFILL_STATS_CHECKPOINTS or ""):match("^(%d+)"))
local function stats_events()
  local f = io.open(store, "r")
  if not f then
    return {}
  end
  local out = {}
  for l in f:lines() do
    local ok, ev = pcall(vim.json.decode, l)
    if ok and type(ev) == "table" then
      out[#out + 1] = ev
    end
  end
  f:close()
  return out
end

-- Events after the first `mark` ones of kind `kind` (and language `lang`).
local function stats_since(mark, kind, lang)
  local out = {}
  for i, ev in ipairs(stats_events()) do
    if i > mark and ev.kind == kind and (lang == nil or ev.language == lang) then
      out[#out + 1] = ev
    end
  end
  return out
end

local function buffer_text()
  return table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), "\n")
end

-- Opens `path`, waits for the model, types `typed` at the end of line `lnum`
-- (opened below it when `open_below`), and checks ghost text and accepting it.
local function check_file(path, lnum, typed, lang, partial)
  vim.cmd("edit " .. vim.fn.fnameescape(path))
  local name = tag .. " " .. lang
  local client = wait_for(function()
    return require("infill").client(0)
  end, 10000)
  record(client ~= nil, name .. ": server attached")
  if not client then
    return
  end
  record(require("infill").ghost_mode() == mode, name .. ": ghost text path is " .. mode,
    "got " .. tostring(require("infill").ghost_mode()))
  local ready = wait_for(function()
    if require("infill").call(client, "is_stopped") then
      return { model = "server exited" }
    end
    local st = require("infill").status()
    return st and st.model ~= "loading" and st
  end, 120000)
  record(ready and ready.model == "ready", name .. ": model ready", vim.inspect(ready))
  if not (ready and ready.model == "ready") then
    return
  end
  vim.cmd("setlocal indentexpr= noautoindent nosmartindent nocindent")
  vim.api.nvim_win_set_cursor(0, { lnum, 0 })
  -- <Tab> with nothing shown keeps its normal action (here: indent).
  -- Suggestions are off meanwhile, so that none can be shown.
  require("infill").toggle(false)
  feed("o")
  sleep(20)
  local before_tab = vim.api.nvim_get_current_line()
  feed("<Tab>")
  wait_for(function()
    return vim.api.nvim_get_current_line() ~= before_tab
  end, 2000)
  local after_tab = vim.api.nvim_get_current_line()
  record(after_tab:match("^%s+$") and #after_tab > #before_tab and ghost() == nil,
    name .. ": <Tab> with no suggestion indents", string.format("%q -> %q", before_tab, after_tab))
  require("infill").toggle(true)
  -- Type the line as a person would, a key at a time.
  vim.api.nvim_set_current_line("")
  vim.api.nvim_win_set_cursor(0, { vim.api.nvim_win_get_cursor(0)[1], 0 })
  for ch in typed:gmatch(".") do
    feed(ch)
    sleep(15)
  end
  local g = wait_for(ghost, 60000)
  record(g ~= nil, name .. ": ghost text appears after typing", "no extmark with text in " .. ns_name)
  if not g then
    feed("<Esc>")
    return
  end
  -- The dismiss key clears it; typing again brings one back.
  feed("<C-]>")
  record(wait_for(function()
    return ghost() == nil
  end, 2000), name .. ": <C-]> dismisses the ghost text", vim.inspect(ghost()))
  feed("<BS>" .. typed:sub(-1))
  g = wait_for(ghost, 60000)
  record(g ~= nil and vim.api.nvim_get_current_line() == typed, name .. ": typing again after dismissing brings ghost text back",
    vim.inspect({ g = g, line = vim.api.nvim_get_current_line() }))
  if not g then
    feed("<Esc>")
    return
  end
  if mode == "plugin" then
    -- Moving the cursor clears it; typing again brings one back.
    feed("<Left>")
    local gone = wait_for(function()
      return ghost() == nil
    end, 2000)
    record(gone, name .. ": moving the cursor clears ghost text", vim.inspect(ghost()))
    feed("<End><BS>" .. typed:sub(-1))
    g = wait_for(ghost, 60000)
    record(g ~= nil, name .. ": typing again brings ghost text back", "none")
    if not g then
      feed("<Esc>")
      return
    end
  end
  local row, col = unpack(vim.api.nvim_win_get_cursor(0))
  local line = vim.api.nvim_get_current_line()
  record(g.row == row - 1 and g.col == col and line == typed, name .. ": ghost text sits at the cursor",
    vim.inspect({ g = g, cursor = { row, col }, line = line }))
  local lines = vim.api.nvim_buf_get_lines(0, 0, -1, false)
  local expect_after = table.concat(vim.list_slice(lines, 1, row - 1), "\n")
  if row > 1 then
    expect_after = expect_after .. "\n"
  end
  expect_after = expect_after .. line:sub(1, col) .. g.text .. line:sub(col + 1)
  if row < #lines then
    expect_after = expect_after .. "\n" .. table.concat(vim.list_slice(lines, row + 1), "\n")
  end
  local shown = g.text
  local mark = #stats_events()
  local word
  if partial then
    -- accept-word takes the next word; the rest stays shown
    word = require("infill.ghost").cut(shown, "word", 0)
    feed("<M-Right>")
    local ok = wait_for(function()
      return vim.api.nvim_get_current_line() == typed .. word
    end, 3000)
    record(ok, name .. ": accept-word inserts " .. vim.inspect(word), vim.inspect(vim.api.nvim_get_current_line()))
    if word ~= shown then
      local rest = wait_for(ghost, 3000)
      record(rest and rest.text == shown:sub(#word + 1), name .. ": the rest stays shown after accept-word",
        vim.inspect(rest))
    end
  end
  feed("<Tab>")
  local accepted = wait_for(function()
    return buffer_text() == expect_after
  end, 5000)
  record(accepted, name .. ": <Tab> accepts " .. vim.inspect(shown),
    "buffer:\n" .. buffer_text() .. "\nexpected:\n" .. expect_after)
  -- The accepts are recorded in the statistics store, with their lengths
  -- in chars: accept-word's part, then <Tab>'s rest (or all of it).
  local total = vim.fn.strchars(shown)
  local want = {}
  if word and word ~= shown then
    want = { { partial = true, chars = vim.fn.strchars(word) }, { partial = false, chars = total - vim.fn.strchars(word) } }
  else
    want = { { partial = false, chars = total } }
  end
  local got = wait_for(function()
    local evs = stats_since(mark, "accepted", lang)
    return #evs >= #want and evs
  end, 5000) or stats_since(mark, "accepted", lang)
  local same = #got == #want
  for i, w in ipairs(want) do
    same = same and got[i].partial == w.partial and got[i].acceptedChars == w.chars
  end
  record(same, name .. ": the store records the accept" .. (#want > 1 and "-word and <Tab> accepts with their lengths" or " with its length"),
    vim.inspect({ want = want, got = got }))
  -- The server's copy of the document matches Neovim's.
  sleep(100)
  local resp = require("infill").call(client, "request_sync", "infill/documentText",
    { uri = vim.uri_from_bufnr(0) }, 5000)
  record(resp and resp.result and resp.result.text == buffer_text() .. "\n",
    name .. ": server's copy matches the buffer", vim.inspect(resp))
  if not partial and #got == 1 and first_checkpoint then
    -- An edit before the first checkpoint: the accepted text's last k
    -- chars deleted; the checkpoint records 1 - k / its length.
    local cur = vim.api.nvim_win_get_cursor(0)
    local cur_line = vim.api.nvim_get_current_line()
    local before = cur_line:sub(1, cur[2])
    local last = vim.split(shown, "\n", { plain = true })
    local k = math.min(3, vim.fn.strchars(last[#last]) - 1)
    if k >= 1 and before:sub(-#last[#last]) == last[#last] then
      local keep = vim.fn.strcharpart(before, 0, vim.fn.strchars(before) - k)
      vim.api.nvim_buf_set_text(0, cur[1] - 1, #keep, cur[1] - 1, cur[2], { "" })
      local n = got[1].n
      local p = wait_for(function()
        for _, ev in ipairs(stats_since(mark, "persisted", lang)) do
          if ev.n == n and ev.session == got[1].session and ev.checkpointSecs == first_checkpoint then
            return ev
          end
        end
      end, (first_checkpoint + 5) * 1000)
      local expect = 1 - k / total
      record(p and math.abs(p.similarity - expect) < 1e-9 and p.deleted == false and p.early == nil,
        name .. string.format(": the %d s checkpoint after deleting %d of %d chars records similarity %.4f", first_checkpoint, k, total, expect),
        vim.inspect(p or stats_since(mark, "persisted", lang)))
    else
      record(false, name .. ": an accepted text to edit", vim.inspect({ shown = shown, line = cur_line }))
    end
  end
  feed("<Esc>")
  sleep(50)
  record(ghost() == nil, name .. ": leaving insert mode clears ghost text", vim.inspect(ghost()))
  -- The status line shows today's acceptance rate (asked for on leaving
  -- insert mode).
  local today = (require("infill").status() or {}).today
  local rate = type(today) == "table" and today.shown > 0 and string.format("infill %d%%", math.floor(today.acceptanceRate * 100 + 0.5))
  local line_shown = rate and wait_for(function()
    return require("infill.status").get() == rate
  end, 5000)
  record(line_shown and today.accepted > 0, name .. ": the status line shows today's acceptance rate (" .. tostring(rate) .. ")",
    vim.inspect({ today = today, line = require("infill.status").get() }))
  vim.cmd("write")
end

co = coroutine.create(function()
  local root = env.INFILL_FIXTURE
  check_file(root .. "/fib.py", 4, "    return fibonacci(n - 1) + ", "python", false)
  check_file(root .. "/src/main/java/demo/Greeter.java", 8, "        System.out.println(greet(", "java", true)
  -- Changed settings reach the running server: a model path that does not
  -- exist makes it reload and fail, with the path in the reason.
  local infill = require("infill")
  local name = tag .. " settings"
  if not infill.client(0) then
    record(false, name .. ": a server to send settings to", "none attached")
    results:close()
    vim.cmd("cquit 1")
    return
  end
  infill.set_settings({ model = { path = root .. "/no-such-model.gguf" } })
  local st = wait_for(function()
    local s = infill.status()
    return s and s.model == "failed" and s
  end, 30000)
  record(st and st.detail:find("no-such-model.gguf", 1, true), name .. ": a changed setting reaches the server", vim.inspect(st))
  local line = wait_for(function()
    local l = require("infill.status").get()
    return l:find("no-such-model", 1, true) and l
  end, 5000)
  record(line, name .. ": the status line shows the error", require("infill.status").get())
  infill.set_settings({ model = { path = vim.NIL } })
  st = wait_for(function()
    local s = infill.status()
    return s and s.model == "ready" and s
  end, 60000)
  record(st, name .. ": resetting it reloads the default model", vim.inspect(infill.status()))
  results:close()
  vim.cmd(failed == 0 and "qall!" or "cquit 1")
end)
vim.schedule(function()
  local ok, err = coroutine.resume(co)
  if not ok then
    record(false, tag .. " script", err)
    vim.cmd("cquit 1")
  end
end)
