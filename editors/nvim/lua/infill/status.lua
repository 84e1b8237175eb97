-- What the server reports: model load progress ($/progress), errors
-- (window/showMessage) and today's acceptance rate (`infill/status`'s
-- `today`), for a statusline: `require("infill.status").get()`.
local M = { text = "", error = nil, progress = nil, today = nil }

local function redraw()
  pcall(vim.cmd, "redrawstatus")
end

--- A short line for the statusline: "infill: loading model 40%",
--- "infill: <error>", "infill 42%" (today's suggestions accepted, once one
--- was shown today and while statistics are recorded), or "" otherwise.
function M.get()
  if M.progress then
    return M.progress
  end
  if M.error then
    return "infill: " .. M.error
  end
  local t = M.today
  if type(t) == "table" and type(t.shown) == "number" and t.shown > 0 and type(t.acceptanceRate) == "number" then
    return string.format("infill %d%%", math.floor(t.acceptanceRate * 100 + 0.5))
  end
  return ""
end

--- Asks the current buffer's server for today's figures (`infill/status`), asynchronously;
--- the statusline shows them once answered. Called on leaving insert mode
--- and every 30 s while an infill client runs.
function M.refresh()
  local infill = require("infill")
  local get = vim.lsp.get_clients or vim.lsp.get_active_clients
  -- The current buffer's server: each counts the store as it found it
  -- at its start, and its own suggestions since.
  local client = infill.client(0) or get({ name = "infill" })[1]
  if not client then
    return
  end
  pcall(infill.call, client, "request", "infill/status", vim.empty_dict(), function(err, res)
    if err or type(res) ~= "table" then
      return
    end
    local today = res.today
    M.today = type(today) == "table" and today or nil
    -- A remote engine's fault (server down, slow, an error status) shows
    -- until the server answers again; other errors stay as they were.
    if res.model == "failed" and type(res.detail) == "string" and res.detail ~= "" then
      M.error = res.detail
      M.failed = true
    elseif res.model == "ready" and M.failed then
      M.error = nil
      M.failed = nil
    end
    redraw()
  end)
end

function M.handlers()
  local default = vim.lsp.handlers["window/showMessage"]
  return {
    ["window/showMessage"] = function(err, result, ctx, config)
      if result and result.type == vim.lsp.protocol.MessageType.Error then
        M.error = (result.message or ""):gsub("^infill: ", "")
        redraw()
      end
      return default(err, result, ctx, config)
    end,
  }
end

local timer
function M.setup()
  local group = vim.api.nvim_create_augroup("infill.status", { clear = true })
  vim.api.nvim_create_autocmd("InsertLeave", {
    group = group,
    callback = function()
      M.refresh()
    end,
  })
  if not timer then
    timer = (vim.uv or vim.loop).new_timer()
    timer:start(30000, 30000, vim.schedule_wrap(M.refresh))
  end
  if vim.fn.exists("##LspProgress") == 0 then
    return -- before 0.10: no progress event
  end
  vim.api.nvim_create_autocmd("LspProgress", {
    group = group,
    callback = function(ev)
      local client = vim.lsp.get_client_by_id(ev.data.client_id)
      if not client or client.name ~= "infill" then
        return
      end
      local value = ev.data.params and ev.data.params.value or {}
      if value.kind == "begin" then
        M.title = value.title
      end
      if value.kind == "end" then
        M.progress = nil
        M.error = nil
        M.refresh()
      else
        local text = value.title or M.title or "working"
        if value.message and value.message ~= "" then
          text = text .. " " .. value.message
        end
        text = text:gsub("^infill: ", "")
        if value.percentage then
          text = text .. string.format(" %d%%", value.percentage)
        end
        M.progress = "infill: " .. text
      end
      redraw()
    end,
  })
end

return M
