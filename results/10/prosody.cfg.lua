-- Throwaway Prosody 0.12 for load runs and tests on one machine.
--
-- Placeholders (@NAME@) are filled in by deploy/local/run-study.sh and by the
-- test harness in agent/src/testing.rs. Everything listens on loopback only
-- and keeps its state under /tmp/xmppload-bench-0vu6x3ve, so several copies can run side by side.

-- Prosody refuses to start as root without this; CI and the test machines run as root.
run_as_root = true

pidfile = "/tmp/xmppload-bench-0vu6x3ve/prosody.pid"
data_path = "/tmp/xmppload-bench-0vu6x3ve/data"
log = {
    { levels = { min = "info" }, to = "file", filename = "/tmp/xmppload-bench-0vu6x3ve/prosody.log" };
}

interfaces = { "127.0.0.1" }
c2s_ports = { 15322 }
http_ports = { 15380 }
http_interfaces = { "127.0.0.1" }
https_ports = {}
s2s_ports = {}

-- Plain c2s stays allowed so that c2s and WebSocket can be compared without
-- TLS; a scenario that wants STARTTLS asks for it and a certificate is added below.
c2s_require_encryption = false
-- TLS, when used in front of WebSocket, is terminated by a proxy.
consider_websocket_secure = true
consider_bosh_secure = true
-- Certificates, when a run uses TLS, are placed here by whoever fills the template.
certificates = "/tmp/xmppload-bench-0vu6x3ve/certs"

modules_enabled = {
    "disco";
    "saslauth";
    "tls";
    "ping";
    "posix";
    "bosh";
    "websocket";
    -- XEP-0198 stream management: a bot only pays for it when its scenario
    -- enables it, but the server must offer it for the comparison to exist.
    "smacks";
    -- Opt-in server metrics (mod_http_openmetrics); statistics cost
    -- Prosody CPU, so runs that measure CPU leave this empty.
    -- @EXTRA_MODULES@
}
modules_disabled = { "s2s" }

https_ports = { 15381 }
https_interfaces = { "127.0.0.1" }
https_ssl = { certificate = "/tmp/xmppload-bench-0vu6x3ve/certs/tls.localhost.crt", key = "/tmp/xmppload-bench-0vu6x3ve/certs/tls.localhost.key" }
modules_disabled = { "s2s", "smacks" }

VirtualHost "anon.localhost"
    authentication = "anonymous"

Component "conference.anon.localhost" "muc"
    -- Without this a room created by one bot stays locked, and the next
    -- joiner gets item-not-found until the owner configures it.
    muc_room_locking = false
    restrict_room_creation = false

VirtualHost "anon.localhost"
    modules_disabled = { "s2s", "smacks", "tls" }
VirtualHost "tls.localhost"
    authentication = "anonymous"
