-- Ghost text for Neovims without vim.lsp.inline_completion (0.10, 0.11), or
-- when `ghost_text = "plugin"`: requests textDocument/inlineCompletion as
-- the user types and draws the answer as virtual text (extmarks).
local M = {}

local api = vim.api
local ns = api.nvim_create_namespace("infill.ghost")
local has_011 = vim.fn.has("nvim-0.11") == 1
local has_inline_virt = vim.fn.has("nvim-0.10") == 1

M.enabled = true
M.debug = false

-- Per buffer: { client_id, timer, request_id, s = suggestion }
-- suggestion: { row, col (0-based byte), text (still to insert at the cursor),
--               end_col (byte col the accept replaces up to, same row), mark, tick }
local buffers = {}

api.nvim_set_hl(0, "InfillGhost", { link = "Comment", default = true })

local function config()
  return require("infill").config
end

local function call(client, method, ...)
  if has_011 then
    return client[method](client, ...)
  end
  return client[method](...)
end

local function byte_col(line, character, enc)
  if enc == "utf-8" then
    return math.min(character, #line)
  end
  local ok, r = pcall(vim.str_byteindex, line, enc, character, false)
  if ok and type(r) == "number" then
    return r
  end
  ok, r = pcall(vim.str_byteindex, line, character, enc == "utf-16")
  if ok and type(r) == "number" then
    return r
  end
  return math.min(character, #line)
end

local function hide(buf)
  local b = buffers[buf]
  if b and b.s and b.s.mark then
    pcall(api.nvim_buf_del_extmark, buf, ns, b.s.mark)
  end
  if b then
    b.s = nil
  end
end

local function cancel(buf)
  local b = buffers[buf]
  if not b then
    return
  end
  if b.timer then
    b.timer:stop()
    if not b.timer:is_closing() then
      b.timer:close()
    end
    b.timer = nil
  end
  if b.request_id then
    local client = vim.lsp.get_client_by_id(b.client_id)
    if client then
      pcall(call, client, "cancel_request", b.request_id)
    end
    b.request_id = nil
  end
end

--- Clears what is shown and any request in flight for `buf`.
function M.clear(buf)
  buf = (buf == nil or buf == 0) and api.nvim_get_current_buf() or buf
  cancel(buf)
  hide(buf)
end

local function draw(buf, s)
  local lines = vim.split(s.text, "\n", { plain = true })
  local opts = {
    virt_text = { { lines[1], "InfillGhost" } },
    virt_text_pos = has_inline_virt and "inline" or "overlay",
    hl_mode = "combine",
  }
  if #lines > 1 then
    local virt_lines = {}
    for i = 2, #lines do
      virt_lines[#virt_lines + 1] = { { lines[i], "InfillGhost" } }
    end
    opts.virt_lines = virt_lines
  end
  s.mark = api.nvim_buf_set_extmark(buf, ns, s.row, s.col, opts)
end

local function show(buf, s)
  hide(buf)
  buffers[buf].s = s
  draw(buf, s)
end

--- Whether a suggestion is shown in the current buffer.
function M.visible(buf)
  buf = (buf == nil or buf == 0) and api.nvim_get_current_buf() or buf
  local b = buffers[buf]
  return b ~= nil and b.s ~= nil
end

--- The suggestion shown in `buf` (for tests and statuslines), or nil.
function M.current(buf)
  buf = (buf == nil or buf == 0) and api.nvim_get_current_buf() or buf
  local b = buffers[buf]
  return b and b.s and { row = b.s.row, col = b.s.col, text = b.s.text } or nil
end

--- An inline item as a suggestion shown at (`row`, `col`) of `line`, or
--- nil where it cannot be shown as ghost text there.
local function as_suggestion(item, line, row, col, enc, tick)
  local text = item.insertText
  if type(text) == "table" then
    text = text.value or ""
  end
  if type(text) ~= "string" or text == "" then
    return nil
  end
  local end_col = col
  if item.range then
    local r = item.range
    if r.start.line ~= row or r["end"].line ~= row then
      return nil -- only edits on the cursor's line can be shown as ghost text
    end
    local sc = byte_col(line, r.start.character, enc)
    local ec = byte_col(line, r["end"].character, enc)
    if sc > col or ec < col then
      return nil
    end
    -- The part of the range before the cursor is already typed.
    local typed = line:sub(sc + 1, col)
    if text:sub(1, #typed) ~= typed then
      return nil
    end
    text = text:sub(#typed + 1)
    end_col = ec
  end
  if text == "" then
    return nil
  end
  return { row = row, col = col, text = text, end_col = end_col, tick = tick, command = item.command }
end

local function on_answer(buf, row, col, tick, enc, err, result)
  local b = buffers[buf]
  if not b then
    return
  end
  b.request_id = nil
  if err or not result then
    return
  end
  -- Only for the text and cursor the request was made for.
  if api.nvim_get_current_buf() ~= buf or vim.b[buf].changedtick ~= tick then
    return
  end
  local cur = api.nvim_win_get_cursor(0)
  if cur[1] - 1 ~= row or cur[2] ~= col or not api.nvim_get_mode().mode:match("^i") then
    return
  end
  local items = result.items or result
  if type(items) ~= "table" then
    return
  end
  local line = api.nvim_buf_get_lines(buf, row, row + 1, false)[1] or ""
  -- Every item that can be shown here: the answer, then its alternatives
  -- (`completion.candidates`), which the next/previous keys cycle through.
  local candidates = {}
  for _, item in ipairs(items) do
    local s = as_suggestion(item, line, row, col, enc, tick)
    if s then
      candidates[#candidates + 1] = s
    end
  end
  if #candidates == 0 then
    return
  end
  local s = candidates[1]
  s.candidates = candidates
  s.index = 1
  show(buf, s)
end

--- Shows the next (`delta` 1) or previous (-1) candidate in place of the
--- one shown, wrapping around; false where there is no other.
function M.cycle(delta)
  local buf = api.nvim_get_current_buf()
  local b = buffers[buf]
  local s = b and b.s
  if not s or not s.candidates or #s.candidates < 2 or vim.b[buf].changedtick ~= s.tick then
    return false
  end
  local index = (s.index - 1 + delta) % #s.candidates + 1
  local chosen = s.candidates[index]
  chosen.candidates = s.candidates
  chosen.index = index
  show(buf, chosen)
  return true
end

--- Tells the server that (part of) a suggestion was accepted, through the
--- command it put on the item (`infill.accepted`): `chars` for a part, nil
--- for all that was left of it.
local function report_accept(buf, command, chars)
  local b = buffers[buf]
  local client = b and vim.lsp.get_client_by_id(b.client_id)
  if not client or type(command) ~= "table" or type(command.arguments) ~= "table" then
    return
  end
  local arg = vim.deepcopy(command.arguments[1] or {})
  arg.length = chars
  call(client, "request", "workspace/executeCommand", {
    command = command.command,
    arguments = { arg },
  }, function() end, buf)
end

--- Asks the server for a suggestion at the cursor. `invoked`: at the
--- user's request (not as they type).
function M.request(buf, invoked)
  buf = (buf == nil or buf == 0) and api.nvim_get_current_buf() or buf
  local b = buffers[buf]
  if not b then
    return
  end
  cancel(buf)
  local client = vim.lsp.get_client_by_id(b.client_id)
  if not client then
    return
  end
  local enc = client.offset_encoding or "utf-16"
  local cur = api.nvim_win_get_cursor(0)
  local row, col = cur[1] - 1, cur[2]
  local tick = vim.b[buf].changedtick
  local params = vim.lsp.util.make_position_params(0, enc)
  params.context = { triggerKind = invoked and 1 or 2 }
  local ok, id = call(client, "request", "textDocument/inlineCompletion", params, function(err, result)
    on_answer(buf, row, col, tick, enc, err, result)
  end, buf)
  if ok then
    b.request_id = id
  end
end

local function schedule_request(buf)
  local b = buffers[buf]
  if not b or not M.enabled then
    return
  end
  cancel(buf)
  local timer = vim.uv and vim.uv.new_timer() or vim.loop.new_timer()
  b.timer = timer
  timer:start(config().debounce_ms or 150, 0, vim.schedule_wrap(function()
    if b.timer ~= timer then
      return
    end
    b.timer = nil
    if not timer:is_closing() then
      timer:close()
    end
    if api.nvim_get_current_buf() == buf and api.nvim_get_mode().mode:match("^i") then
      M.request(buf, false)
    end
  end))
end

--- The part of `text` that accept-word / accept-line take.
function M.cut(text, kind, skip)
  text = text:sub((skip or 0) + 1)
  if kind == "line" then
    if text:sub(1, 1) == "\n" then
      local nl = text:find("\n", 2, true)
      return nl and text:sub(1, nl - 1) or text
    end
    local nl = text:find("\n", 1, true)
    return nl and text:sub(1, nl - 1) or text
  elseif kind == "word" then
    for _, pat in ipairs({ "^[ \t]*[%w_]+", "^[ \t]*[^%w_%s]+", "^[ \t]*\n[ \t]*", "^%s+" }) do
      local m = text:match(pat)
      if m then
        return m
      end
    end
    return text
  end
  return text
end

--- Inserts the suggestion, or its next word or line (`kind`: "full",
--- "word", "line"). What is left of it stays shown.
function M.accept(kind)
  local buf = api.nvim_get_current_buf()
  local b = buffers[buf]
  local s = b and b.s
  if not s then
    return false
  end
  kind = kind or "full"
  local part = M.cut(s.text, kind, 0)
  local rest = s.text:sub(#part + 1)
  cancel(buf)
  hide(buf)
  local lines = vim.split(part, "\n", { plain = true })
  -- A whole accept replaces up to the end of the answer's range.
  local end_col = (rest == "" and s.end_col) or s.col
  api.nvim_buf_set_text(buf, s.row, s.col, s.row, end_col, lines)
  local row = s.row + #lines - 1
  local col = (#lines == 1 and s.col or 0) + #lines[#lines]
  api.nvim_win_set_cursor(0, { row + 1, col })
  report_accept(buf, s.command, rest ~= "" and vim.fn.strchars(part) or nil)
  if rest ~= "" then
    -- Keep showing the rest; the edit's own TextChangedI leaves it.
    show(buf, {
      row = row,
      col = col,
      text = rest,
      end_col = col + math.max(0, s.end_col - s.col),
      tick = vim.b[buf].changedtick,
      command = s.command,
    })
  end
  return true
end

--- Hides the suggestion until the next edit.
function M.dismiss()
  M.clear(0)
end

function M.set_enabled(on)
  M.enabled = on
  if not on then
    for buf in pairs(buffers) do
      M.clear(buf)
    end
  end
end

local function still_valid(buf)
  local b = buffers[buf]
  local s = b and b.s
  if not s then
    return false
  end
  local cur = api.nvim_win_get_cursor(0)
  return cur[1] - 1 == s.row and cur[2] == s.col and vim.b[buf].changedtick == s.tick
end

--- Starts ghost text in `buf` for the client `client_id`.
function M.attach(buf, client_id)
  if buffers[buf] then
    buffers[buf].client_id = client_id
    return
  end
  buffers[buf] = { client_id = client_id }
  local group = api.nvim_create_augroup("infill.ghost." .. buf, { clear = true })
  api.nvim_create_autocmd({ "TextChangedI", "TextChangedP" }, {
    group = group,
    buffer = buf,
    callback = function()
      if still_valid(buf) then
        return -- our own accept: the rest is shown
      end
      hide(buf)
      schedule_request(buf)
    end,
  })
  api.nvim_create_autocmd("InsertEnter", {
    group = group,
    buffer = buf,
    callback = function()
      schedule_request(buf)
    end,
  })
  api.nvim_create_autocmd("CursorMovedI", {
    group = group,
    buffer = buf,
    callback = function()
      local b = buffers[buf]
      if b and b.s and not still_valid(buf) then
        M.clear(buf)
      end
    end,
  })
  api.nvim_create_autocmd({ "InsertLeave", "BufLeave" }, {
    group = group,
    buffer = buf,
    callback = function()
      M.clear(buf)
    end,
  })
  api.nvim_create_autocmd("ModeChanged", {
    group = group,
    buffer = buf,
    callback = function()
      if not api.nvim_get_mode().mode:match("^i") then
        M.clear(buf)
      end
    end,
  })
  api.nvim_create_autocmd({ "BufUnload", "BufWipeout" }, {
    group = group,
    buffer = buf,
    callback = function()
      M.clear(buf)
      buffers[buf] = nil
      pcall(api.nvim_del_augroup_by_id, group)
    end,
  })
  api.nvim_create_autocmd("LspDetach", {
    group = group,
    buffer = buf,
    callback = function(ev)
      if ev.data and ev.data.client_id == client_id then
        M.clear(buf)
        buffers[buf] = nil
        pcall(api.nvim_del_augroup_by_id, group)
      end
    end,
  })
end

return M
