-- User commands; nothing starts until require("infill").setup() is called.
if vim.g.loaded_infill then
  return
end
vim.g.loaded_infill = true

vim.api.nvim_create_user_command("InfillToggle", function()
  require("infill").toggle()
end, { desc = "infill: automatic suggestions on/off" })

vim.api.nvim_create_user_command("InfillRestart", function()
  local get = vim.lsp.get_clients or vim.lsp.get_active_clients
  local bufs = {}
  for _, c in ipairs(get({ name = "infill" })) do
    for buf in pairs(c.attached_buffers or {}) do
      bufs[#bufs + 1] = buf
    end
    require("infill").call(c, "stop", true)
  end
  vim.defer_fn(function()
    for _, buf in ipairs(bufs) do
      if vim.api.nvim_buf_is_valid(buf) then
        require("infill").start(buf)
      end
    end
  end, 500)
end, { desc = "infill: restart the server" })

vim.api.nvim_create_user_command("InfillStatus", function()
  require("infill").status(function(res)
    vim.schedule(function()
      if not res then
        vim.notify("infill: no server for this buffer")
      else
        vim.notify(string.format("infill: model %s %s", res.model, res.detail or ""))
      end
    end)
  end)
end, { desc = "infill: model status" })

vim.api.nvim_create_user_command("InfillSuggest", function()
  if require("infill").ghost_mode() == "plugin" then
    require("infill.ghost").request(0, true)
  else
    vim.notify("infill: Neovim's inline completion asks by itself as you type")
  end
end, { desc = "infill: ask for a suggestion now" })
