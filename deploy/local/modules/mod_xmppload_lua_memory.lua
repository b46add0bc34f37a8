-- Publishes the size of Prosody's Lua heap as a gauge, so that an
-- OpenMetrics reader (mod_http_openmetrics) can follow Lua memory. Prosody
-- 0.12 ships no such metric; only the shell's "server:memory()" prints it.
--
-- The value is refreshed on every "stats-update" event, which the
-- statistics manager fires on each collection (on each scrape when
-- statistics_interval = "manual").
module:set_global();

local heap = module:metric("gauge", "heap", "bytes", "Memory in use by the Lua heap"):with_labels();

module:hook_global("stats-update", function ()
	heap:set(collectgarbage("count") * 1024);
end);
