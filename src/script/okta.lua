-- okta.lua: the collection logic oktail ships for the Okta System Log (GET /api/v1/logs).
--
-- The script decides, the host does. The host sends the requests (with the token, which a script never
-- sees), paces them, retries, checks that every URL returned here stays on the org's origin, delivers
-- events to the sinks and commits a state only after every sink acknowledged the page it belongs to.
--
-- Start your own from this file:  oktail script print okta > my-okta.lua
-- then set `script: ./my-okta.lua` in the source's configuration. docs/scripting.md has the contract.

-- Okta's largest page. A page holding fewer events than this means the log is caught up.
local LIMIT = 1000

-- Okta keeps 90 days of events and rejects a `since` more than 180 days back.
local RETENTION_MS = 90 * 24 * 60 * 60 * 1000

-- Fields the host adds to every event, without calling into Lua per event.
tags = { _okta_event_type = "systemLog" }

-- Called once, when nothing has been committed yet. The host commits the result before the first request,
-- so a crash before the first page cannot move a "now" start forward.
-- ctx = { start_from = <ISO 8601 or nil>, now = <ISO 8601> }
function initial_state(ctx)
  local now_ms = assert(parse_time(ctx.now))
  local since_ms = now_ms
  if ctx.start_from ~= nil then
    local parsed, err = parse_time(ctx.start_from)
    if parsed == nil then error("start_from: " .. err, 0) end
    since_ms = parsed
  end
  -- Decided once, here: clamping at every cycle would keep sliding the start forward. Said out loud: the
  -- operator asked for events that no longer exist.
  if since_ms < now_ms - RETENTION_MS then
    since_ms = now_ms - RETENTION_MS
    log("warn", "start_from " .. ctx.start_from .. " is older than the 90 days Okta keeps; starting from "
      .. format_time(since_ms) .. " instead")
  end
  return { since = format_time(since_ms) }
end

-- The first request of a cycle. A `next` link is Okta's cursor: used as is, never built or parsed.
function cycle_request(state)
  if state.next ~= nil then return state.next end
  if state.since == nil then error("the state has neither a next link nor a since time", 0) end
  return "/api/v1/logs?since=" .. url_encode(state.since) .. "&sortOrder=ASCENDING&limit=" .. LIMIT
end

-- After every page: the state to commit once the page is delivered, and the next URL of this cycle (or nil
-- to end the cycle). `state` is the state the page was fetched from.
-- page = { status, url, headers, links, count, first = {uuid, published} or nil, last = ... }
function after_page(state, page)
  local next_link = page.links.next
  local new_state = { last_uuid = state.last_uuid, last_published = state.last_published }
  if page.last ~= nil then
    new_state.last_uuid = page.last.uuid
    new_state.last_published = page.last.published
  end

  if next_link == nil then
    -- A polling request always carries a next link; without one, keep the position we had and stop.
    new_state.next = state.next
    new_state.since = state.since
    return new_state, nil
  end

  new_state.next = next_link
  -- `since` is only a fallback now (should Okta ever reject the cursor); an event's time replaces it.
  if new_state.last_published == nil then new_state.since = state.since end

  -- A short page means caught up: end the cycle rather than fetch an empty page every time.
  if page.count >= LIMIT then return new_state, next_link end
  return new_state, nil
end
