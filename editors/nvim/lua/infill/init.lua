-- infill: code completions from a local model, through `infill serve`.
--
--   require("infill").setup({
--     cmd = { "infill", "serve" },            -- how to start the server
--     filetypes = { "python", "java" },       -- add others to opt in
--     settings = { completion = { maxTokens = 64 } },  -- the server's settings
--     ghost_text = "auto",                     -- "auto" | "builtin" | "plugin" | false
--     keymaps = { accept = "<Tab>", accept_word = "<M-Right>", accept_line = "<M-Down>", dismiss = "<C-]>",
--                 next = "<M-]>", previous = "<M-[>" },  -- cycle candidates (completion.candidates)
--   })
local M = {}

-- Client methods: `client:m(...)` from 0.11, `client.m(...)` before.
local has_011 = vim.fn.has("nvim-0.11") == 1
function M.call(client, method, ...)
  if has_011 then
    return client[method](client, ...)
  end
  return client[method](...)
end

local defaults = {
  cmd = { "infill", "serve" },
  filetypes = { "python", "java" },
  root_markers = { ".git", "pyproject.toml", "setup.py", "pom.xml", "build.gradle", "build.gradle.kts" },
  settings = {},
  -- "auto": Neovim's own vim.lsp.inline_completion where it exists (0.12+),
  -- else the plugin's extmark ghost text. "builtin" / "plugin" force one;
  -- false shows none (completion items only).
  ghost_text = "auto",
  debounce_ms = 150,
  keymaps = {
    accept = "<Tab>",
    accept_word = "<M-Right>",
    accept_line = "<M-Down>",
    dismiss = "<C-]>",
    -- The next / previous candidate, where the server offers several
    -- (`completion.candidates`).
    next = "<M-]>",
    previous = "<M-[>",
  },
}

M.config = vim.deepcopy(defaults)

local function has_builtin()
  return vim.lsp.inline_completion ~= nil and type(vim.lsp.inline_completion.enable) == "function"
end

--- Which ghost text path is in use: "builtin", "plugin" or nil.
function M.ghost_mode()
  local g = M.config.ghost_text
  if g == false or g == "off" then
    return nil
  end
  if g == "builtin" then
    return has_builtin() and "builtin" or "plugin"
  end
  if g == "plugin" then
    return "plugin"
  end
  return has_builtin() and "builtin" or "plugin"
end

--- The infill client attached to `bufnr` (default: current buffer).
function M.client(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  local get = vim.lsp.get_clients or vim.lsp.get_active_clients
  for _, c in ipairs(get({ bufnr = bufnr, name = "infill" })) do
    return c
  end
  return nil
end

local function root_dir(bufnr)
  local name = vim.api.nvim_buf_get_name(bufnr)
  local found
  if vim.fs.root then
    found = vim.fs.root(bufnr, M.config.root_markers)
  else
    local hit = vim.fs.find(M.config.root_markers, { path = vim.fs.dirname(name), upward = true })[1]
    found = hit and vim.fs.dirname(hit)
  end
  return found or (name ~= "" and vim.fs.dirname(name)) or vim.fn.getcwd()
end

--- Starts (or reuses) the server for `bufnr`.
function M.start(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  if vim.bo[bufnr].buftype ~= "" then
    return nil
  end
  local settings = M.config.settings or {}
  return vim.lsp.start({
    name = "infill",
    cmd = M.config.cmd,
    root_dir = root_dir(bufnr),
    init_options = settings,
    -- Neovim sends these with workspace/didChangeConfiguration after init
    -- (unless empty) and answers workspace/configuration from them.
    settings = { infill = settings },
    handlers = require("infill.status").handlers(),
  }, { bufnr = bufnr })
end

--- Merges `settings` into the server's settings and sends them to every
--- running infill client (workspace/didChangeConfiguration).
function M.set_settings(settings)
  M.config.settings = vim.tbl_deep_extend("force", M.config.settings or {}, settings or {})
  local get = vim.lsp.get_clients or vim.lsp.get_active_clients
  for _, c in ipairs(get({ name = "infill" })) do
    c.settings = { infill = M.config.settings }
    M.call(c, "notify", "workspace/didChangeConfiguration", { settings = { infill = M.config.settings } })
  end
end

--- Automatic suggestions on or off (all buffers).
M.enabled = true
function M.toggle(on)
  if on == nil then
    on = not M.enabled
  end
  M.enabled = on
  local mode = M.ghost_mode()
  if mode == "builtin" then
    local get = vim.lsp.get_clients or vim.lsp.get_active_clients
    for _, c in ipairs(get({ name = "infill" })) do
      for buf in pairs(c.attached_buffers or {}) do
        vim.lsp.inline_completion.enable(on, { bufnr = buf })
      end
    end
  elseif mode == "plugin" then
    require("infill.ghost").set_enabled(on)
  end
  vim.notify("infill: automatic suggestions " .. (on and "on" or "off"))
end

--- Sends `infill/status` and calls `cb(result)` (or returns it when `cb` is nil,
--- waiting up to 5 s).
function M.status(cb, bufnr)
  local client = M.client(bufnr)
  if not client then
    if cb then
      cb(nil)
    end
    return nil
  end
  if cb then
    M.call(client, "request", "infill/status", vim.empty_dict(), function(err, res)
      cb(err and nil or res)
    end)
    return
  end
  local resp = M.call(client, "request_sync", "infill/status", vim.empty_dict(), 5000)
  return resp and resp.result
end

local function map_fallback(lhs)
  -- The key's own action when nothing is shown: an existing insert-mode
  -- mapping of `lhs` if there was one, else the key itself.
  local prev = vim.fn.maparg(lhs, "i", false, true)
  if type(prev) == "table" and prev.lhs ~= nil and not (prev.desc or ""):match("^infill") then
    return prev
  end
  return nil
end

local function fallback_keys(lhs, prev)
  if prev then
    if prev.callback then
      local out = prev.callback()
      if prev.expr == 1 then
        return out or ""
      end
      return ""
    end
    if prev.expr == 1 then
      return vim.api.nvim_eval(prev.rhs)
    end
    if prev.noremap == 1 then
      -- Keys of a noremap mapping, typed without remapping.
      vim.api.nvim_feedkeys(vim.keycode and vim.keycode(prev.rhs) or vim.api.nvim_replace_termcodes(prev.rhs, true, true, true), "n", false)
      return ""
    end
    return prev.rhs
  end
  return lhs
end

local function set_keymaps()
  local km = M.config.keymaps or {}
  local mode = M.ghost_mode()
  if not mode then
    return
  end
  local ghost = mode == "plugin" and require("infill.ghost") or nil
  local function partial(kind)
    if ghost then
      return ghost.accept(kind)
    end
    return vim.lsp.inline_completion.get({
      on_accept = function(item)
        if type(item.insert_text) ~= "string" then
          return item
        end
        -- A non-empty range holds what is already typed: keep it, and cut
        -- the word or line from what follows.
        local typed = 0
        if item.range and not item.range:is_empty() then
          local row, col = unpack(vim.api.nvim_win_get_cursor(0))
          local sr, sc = item.range:to_extmark()
          if sr == row - 1 and sc <= col then
            typed = col - sc
          end
        end
        local part = require("infill.ghost").cut(item.insert_text, kind, typed)
        local whole = typed + #part >= #item.insert_text
        item.insert_text = item.insert_text:sub(1, typed) .. part
        -- The server's accept command (run after the insert) gets the
        -- part's length in chars, unless the part is all that was left.
        local cmd = item.command
        if not whole and type(cmd) == "table" and type(cmd.arguments) == "table" then
          local arg = vim.deepcopy(cmd.arguments[1] or {})
          arg.length = vim.fn.strchars(part)
          item.command = { title = cmd.title, command = cmd.command, arguments = { arg } }
        end
        return item
      end,
    })
  end
  local specs = {
    { km.accept, "full", "infill: accept the suggestion" },
    { km.accept_word, "word", "infill: accept the next word of the suggestion" },
    { km.accept_line, "line", "infill: accept the next line of the suggestion" },
  }
  for _, spec in ipairs(specs) do
    local lhs, kind, desc = spec[1], spec[2], spec[3]
    if lhs and lhs ~= "" then
      local prev = map_fallback(lhs)
      vim.keymap.set("i", lhs, function()
        if ghost then
          if ghost.visible() then
            return "<Cmd>lua require('infill.ghost').accept('" .. kind .. "')<CR>"
          end
          return fallback_keys(lhs, prev)
        end
        -- builtin: get() schedules the edit and says whether there was one
        local ok
        if kind == "full" then
          ok = vim.lsp.inline_completion.get()
        else
          ok = partial(kind)
        end
        if not ok then
          return fallback_keys(lhs, prev)
        end
        return ""
      end, { expr = true, replace_keycodes = true, desc = desc })
    end
  end
  local cycles = {
    { km.next, 1, "infill: show the next candidate" },
    { km.previous, -1, "infill: show the previous candidate" },
  }
  for _, spec in ipairs(cycles) do
    local lhs, delta, desc = spec[1], spec[2], spec[3]
    if lhs and lhs ~= "" then
      local prev = map_fallback(lhs)
      vim.keymap.set("i", lhs, function()
        if ghost then
          if ghost.visible() then
            return "<Cmd>lua require('infill.ghost').cycle(" .. delta .. ")<CR>"
          end
          return fallback_keys(lhs, prev)
        end
        -- builtin (0.12): select() cycles the items the server gave
        local select = vim.lsp.inline_completion.select
        if type(select) == "function" then
          select({ count = delta })
          return ""
        end
        return fallback_keys(lhs, prev)
      end, { expr = true, replace_keycodes = true, desc = desc })
    end
  end
  if km.dismiss and km.dismiss ~= "" then
    local prev = map_fallback(km.dismiss)
    vim.keymap.set("i", km.dismiss, function()
      if ghost then
        if ghost.visible() then
          return "<Cmd>lua require('infill.ghost').dismiss()<CR>"
        end
        return fallback_keys(km.dismiss, prev)
      end
      -- builtin: turning it off and on drops what is shown
      local buf = vim.api.nvim_get_current_buf()
      if vim.lsp.inline_completion.is_enabled({ bufnr = buf }) then
        vim.lsp.inline_completion.enable(false, { bufnr = buf })
        vim.lsp.inline_completion.enable(true, { bufnr = buf })
        return ""
      end
      return fallback_keys(km.dismiss, prev)
    end, { expr = true, replace_keycodes = true, desc = "infill: dismiss the suggestion" })
  end
end

function M.setup(opts)
  M.config = vim.tbl_deep_extend("force", vim.deepcopy(defaults), opts or {})
  if opts and opts.filetypes then
    M.config.filetypes = opts.filetypes -- a list replaces, not merges
  end
  local group = vim.api.nvim_create_augroup("infill", { clear = true })
  vim.api.nvim_create_autocmd("FileType", {
    group = group,
    pattern = M.config.filetypes,
    callback = function(ev)
      M.start(ev.buf)
    end,
  })
  vim.api.nvim_create_autocmd("LspAttach", {
    group = group,
    callback = function(ev)
      local client = vim.lsp.get_client_by_id(ev.data.client_id)
      if not client or client.name ~= "infill" then
        return
      end
      local mode = M.ghost_mode()
      if mode == "builtin" then
        vim.lsp.inline_completion.enable(M.enabled, { bufnr = ev.buf })
      elseif mode == "plugin" then
        require("infill.ghost").attach(ev.buf, client.id)
      end
    end,
  })
  set_keymaps()
  require("infill.status").setup()
  -- Buffers already open when setup() runs.
  for _, buf in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_loaded(buf) and vim.tbl_contains(M.config.filetypes, vim.bo[buf].filetype) then
      M.start(buf)
    end
  end
end

return M
