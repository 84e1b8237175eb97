-- What the server reports: model load progress ($/progress) and errors
-- (window/showMessage), for a statusline: `require("infill.status").get()`.
local M = { text = "", error = nil, progress = nil }

local function redraw()
  pcall(vim.cmd, "redrawstatus")
end

--- A short line for the statusline: "infill: loading model 40%",
--- "infill: <error>", or "" when all is well.
function M.get()
  if M.progress then
    return M.progress
  end
  if M.error then
    return "infill: " .. M.error
  end
  return ""
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

function M.setup()
  if vim.fn.exists("##LspProgress") == 0 then
    return -- before 0.10: no progress event
  end
  vim.api.nvim_create_autocmd("LspProgress", {
    group = vim.api.nvim_create_augroup("infill.status", { clear = true }),
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
