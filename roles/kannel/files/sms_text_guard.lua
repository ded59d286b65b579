-- The sendsms guard's text check (HAProxy Lua action `lua.sms_text_guard`).
--
-- Kannel sends whatever bytes it is given with the coding it is told, and silently turns
-- characters that coding cannot hold into '?'. This check makes sure the handset shows exactly
-- the text the caller sent:
--   * the text is read as UTF-8 (the only charset accepted);
--   * without coding=, GSM 03.38 7-bit is chosen when every character is in its default alphabet
--     or extension table, UCS-2 otherwise, and the request is rewritten to say so;
--   * coding=0 with a character GSM cannot hold is refused (400), never sent lossily;
--   * the length is counted the way the network counts it: GSM septets (an extension character
--     takes two) or UTF-16 code units (a character beyond the BMP takes two), 160 septets or 70
--     units in one part, 153 or 67 per part of a concatenated message, a character never split
--     across parts (see ucs2_parts); more parts than the account's max_messages is refused (413).
-- The pure functions are in the table returned at the end, so unit tests can load this file
-- without HAProxy (tests/unit/test_sms_text_guard.py).

local M = {}

-- GSM 03.38 default alphabet (3GPP TS 23.038 6.2.1), without the escape code 0x1B.
local GSM_DEFAULT_ALPHABET = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
  .. "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
-- Its extension table (6.2.1.1): each costs an escape septet plus its own.
local GSM_EXTENSION_TABLE = "\f^{}\\[~]|€"

M.SINGLE = { gsm = 160, ucs2 = 70 }
M.PER_PART = { gsm = 153, ucs2 = 67 }
M.UNIT_NAMES = { gsm = "GSM 7-bit septets", ucs2 = "UCS-2 code units" }

-- Septets per code point: 1 in the default alphabet, 2 in the extension table, absent otherwise.
local GSM_SEPTETS = {}
for _, code in utf8.codes(GSM_DEFAULT_ALPHABET) do GSM_SEPTETS[code] = 1 end
for _, code in utf8.codes(GSM_EXTENSION_TABLE) do GSM_SEPTETS[code] = 2 end
M.GSM_SEPTETS = GSM_SEPTETS

-- Code points of a UTF-8 string, or nil and the byte offset of the first invalid sequence.
-- Lua 5.3's utf8 library accepts surrogates and values past U+10FFFF; UTF-8 does not.
function M.code_points(text)
  local length, bad = utf8.len(text)
  if not length then return nil, bad end
  local codes = {}
  for position, code in utf8.codes(text) do
    if code > 0x10FFFF or (code >= 0xD800 and code <= 0xDFFF) then return nil, position end
    codes[#codes + 1] = code
  end
  return codes
end

-- Units of each character in an encoding ("gsm" or "ucs2"); nil and the index of the first
-- character the encoding cannot hold.
local function character_units(codes, encoding)
  local units = {}
  for index, code in ipairs(codes) do
    if encoding == "gsm" then
      units[index] = GSM_SEPTETS[code]
      if not units[index] then return nil, index end
    else
      units[index] = code > 0xFFFF and 2 or 1
    end
  end
  return units
end

-- GSM parts: one part up to 160 septets, otherwise parts of at most 153 filled in order, an
-- escape never separated from its character (Kannel's own split does the same).
local function gsm_parts(units, total)
  if total <= M.SINGLE.gsm then return 1 end
  local parts, filled = 1, 0
  for _, width in ipairs(units) do
    if filled + width > M.PER_PART.gsm then
      parts, filled = parts + 1, 0
    end
    filled = filled + width
  end
  return parts
end

-- UCS-2 parts: Kannel cuts a concatenated UCS-2 message every 134 octets (67 units) whatever
-- lies there, and a character beyond the BMP cut in two shows as two '?' on the handset. When a
-- cut would land inside one, smaller parts are used: a user data header element of our own
-- (below) takes room from every part, so Kannel cuts every 66, 65, ... units instead. Returns
-- the parts and units per part, or nil when no part size from 67 down to 60 avoids every cut.
M.MIN_UCS2_PER_PART = 60
local function ucs2_parts(units, total)
  if total <= M.SINGLE.ucs2 then return 1, nil end
  local second_half = {} -- unit offsets where a character's second unit sits
  local offset = 0
  for _, width in ipairs(units) do
    if width == 2 then second_half[offset + 1] = true end
    offset = offset + width
  end
  for per_part = M.PER_PART.ucs2, M.MIN_UCS2_PER_PART, -1 do
    local cuts = false
    for boundary = per_part, total - 1, per_part do
      if second_half[boundary] then
        cuts = true
        break
      end
    end
    if not cuts then return (total + per_part - 1) // per_part, per_part end
  end
  return nil
end

-- How a text travels: {encoding, units, parts, per_part}; nil and the index of the first
-- character that does not fit when `encoding` is forced to "gsm"; nil and 0 when a UCS-2 text
-- cannot be split without cutting a character. per_part is set for a UCS-2 text of several parts.
function M.measure(codes, encoding)
  if encoding == nil then
    encoding = character_units(codes, "gsm") and "gsm" or "ucs2"
  end
  local units, bad = character_units(codes, encoding)
  if not units then return nil, bad end
  local total = 0
  for _, width in ipairs(units) do total = total + width end
  if encoding == "gsm" then
    return { encoding = encoding, units = total, parts = gsm_parts(units, total) }
  end
  local parts, per_part = ucs2_parts(units, total)
  if not parts then return nil, 0 end
  return { encoding = encoding, units = total, parts = parts, per_part = per_part }
end

-- The user data header that makes Kannel cut a UCS-2 message every `per_part` units: one
-- information element of the "SME to SME specific use" range (3GPP TS 23.040 9.2.3.24), which
-- receivers skip when they do not know it, sized so 134 octets less its size leave per_part
-- units; Kannel adds its concatenation element after it. nil for Kannel's own 67.
M.PADDING_IEI = 0x80
function M.padding_udh(per_part)
  if per_part == nil or per_part == M.PER_PART.ucs2 then return nil end
  local data_length = 2 * (M.PER_PART.ucs2 - per_part) - 2
  local octets = { 2 + data_length, M.PADDING_IEI, data_length }
  for _ = 1, data_length do octets[#octets + 1] = 0 end
  local encoded = {}
  for index, octet in ipairs(octets) do encoded[index] = string.format("%%%02X", octet) end
  return table.concat(encoded)
end

-- Every two-digit hex escape, in either case, to its byte: gsub with a table is several times
-- faster than with a function, and a Khmer text is three escapes a character.
local HEX_DIGITS = "0123456789abcdefABCDEF"
local ESCAPED = {}
for i = 1, #HEX_DIGITS do
  for j = 1, #HEX_DIGITS do
    local pair = HEX_DIGITS:sub(i, i) .. HEX_DIGITS:sub(j, j)
    ESCAPED[pair] = string.char(tonumber(pair, 16))
  end
end

-- Percent-decoding of one query value ('+' is a space); nil when an escape is malformed.
function M.url_decode(value)
  if value:find("%%%X") or value:find("%%%x?$") or value:find("%%%x%X") then return nil end
  value = value:gsub("%+", " ")
  return (value:gsub("%%(%x%x)", ESCAPED))
end

-- The query's fields in order: {name, raw value (still URL-encoded), source (the whole field)}.
function M.parse_query(query)
  local fields = {}
  for field in (query or ""):gmatch("[^&]+") do
    local name, value = field:match("^([^=]*)=?(.*)$")
    fields[#fields + 1] = { name = M.url_decode(name) or name, raw = value, source = field }
  end
  return fields
end

local function first(fields, name)
  for _, field in ipairs(fields) do
    if field.name == name then return field end
  end
end

local function describe(code)
  return string.format("'%s' (U+%04X)", utf8.char(code), code)
end

local function refuse(status, message)
  return { status = status, message = "Refused: " .. message }
end

-- The decision for one sendsms query: {status = 400|413, message} to refuse it, or
-- {query = rewritten query, encoding, parts} to pass it on to smsbox.
function M.check(query, max_parts, account)
  local fields = M.parse_query(query)

  local udh = first(fields, "udh")
  if udh and udh.raw ~= "" then
    return refuse(400, "udh= is not accepted: the gateway splits long texts and adds the headers itself.")
  end

  local charset = first(fields, "charset")
  if charset then
    local name = (M.url_decode(charset.raw) or charset.raw):upper()
    if name ~= "UTF-8" and name ~= "UTF8" then
      return refuse(400, string.format("charset=%s is not accepted. Send the text as UTF-8 and leave "
        .. "charset= out.", name))
    end
  end

  local text_field = first(fields, "text")
  local text = text_field and M.url_decode(text_field.raw)
  if text_field and not text then
    return refuse(400, "text= is not URL-encoded correctly: every '%' must be followed by two hex digits.")
  end
  if not text or text == "" then
    return refuse(400, "the text is missing or empty. Give the message in text=, as URL-encoded UTF-8.")
  end
  local codes, bad_byte = M.code_points(text)
  if not codes then
    return refuse(400, string.format("the text is not valid UTF-8 (byte %d). Send it as URL-encoded UTF-8.",
      bad_byte))
  end

  local coding = first(fields, "coding")
  local wanted = coding and M.url_decode(coding.raw)
  local encoding
  if wanted == nil or wanted == "" then
    encoding = nil
  elseif wanted == "0" then
    encoding = "gsm"
  elseif wanted == "2" then
    encoding = "ucs2"
  elseif wanted == "1" then
    return refuse(400, "coding=1 (8-bit data) is not for text. Leave coding= out: the gateway picks "
      .. "GSM 7-bit or UCS-2 from the text.")
  else
    return refuse(400, string.format("coding=%s is not a coding. Leave coding= out (the gateway picks "
      .. "GSM 7-bit or UCS-2 from the text), or send 0 (GSM 7-bit) or 2 (UCS-2).", wanted))
  end

  local measured, bad_index = M.measure(codes, encoding)
  if not measured and bad_index == 0 then
    return refuse(400, string.format("this text of %d UCS-2 code units cannot be split into parts without "
      .. "cutting a character beyond the BMP (most emoji) in two, which handsets show as '?'. Send it as "
      .. "several messages, or move or drop some emoji.", #codes))
  elseif not measured then
    return refuse(400, string.format("coding=0 (GSM 7-bit) cannot carry %s, character %d of the text: the "
      .. "handset would show '?'. Leave coding= out (the gateway then sends UCS-2) or send coding=2.",
      describe(codes[bad_index]), bad_index))
  end
  if measured.parts > max_parts then
    return refuse(413, string.format("the text needs %d part%s (%d %s: %d fit in one part, %d per part "
      .. "when split) and account %s allows %d (max_messages). Shorten the text or raise max_messages.",
      measured.parts, measured.parts == 1 and "" or "s", measured.units, M.UNIT_NAMES[measured.encoding],
      M.SINGLE[measured.encoding], measured.per_part or M.PER_PART[measured.encoding], account or "?",
      max_parts))
  end

  -- Tell smsbox exactly what was decided: the text's charset and the coding to send it in.
  local kept = {}
  for _, field in ipairs(fields) do
    if field.name ~= "coding" and field.name ~= "charset" and field.name ~= "udh" then
      kept[#kept + 1] = field.source
    end
  end
  kept[#kept + 1] = "coding=" .. (measured.encoding == "gsm" and "0" or "2")
  kept[#kept + 1] = "charset=UTF-8"
  local udh = M.padding_udh(measured.per_part)
  if udh then kept[#kept + 1] = "udh=" .. udh end
  measured.query = table.concat(kept, "&")
  return measured
end

-- The HAProxy action: txn.sms_max_parts and txn.sms_account are set by the account's ACL in
-- haproxy.cfg; a request of no known account passes untouched, and smsbox refuses it (403).
function M.action(txn)
  local max_parts = txn:get_var("txn.sms_max_parts")
  if max_parts == nil then return end
  local decision = M.check(txn.f:query(), tonumber(max_parts), txn:get_var("txn.sms_account"))
  if decision.status then
    txn:set_var("txn.sms_refusal_status", decision.status)
    txn:set_var("txn.sms_refusal", decision.message)
    return
  end
  txn.http:req_set_query(decision.query)
  txn:set_var("txn.sms_coding", decision.encoding == "gsm" and "GSM-7" or "UCS-2")
  txn:set_var("txn.sms_parts", decision.parts)
end

if core ~= nil and core.register_action ~= nil then
  core.register_action("sms_text_guard", { "http-req" }, M.action, 0)
end

return M
