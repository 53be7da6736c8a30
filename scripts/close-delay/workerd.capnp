# The same repro under bare workerd, without wrangler or Miniflare (one Worker, one object):
#   mkdir -p /tmp/close-delay-do && "$WORKERD" serve workerd.capnp --verbose
# with WORKERD = node_modules/miniflare/node_modules/@cloudflare/workerd-linux-64/bin/workerd (the
# binary wrangler dev runs). Listens on 127.0.0.1:8812; measure with BASE=http://127.0.0.1:8812.
using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "main", worker = .worker),
    (name = "disk", disk = (path = "/tmp/close-delay-do", writable = true)),
  ],
  sockets = [(name = "http", address = "127.0.0.1:8812", http = (), service = "main")],
);
const worker :Workerd.Worker = (
  modules = [(name = "worker.mjs", esModule = embed "worker.mjs")],
  compatibilityDate = "2026-11-01",
  durableObjectNamespaces = [(className = "O", uniqueKey = "close-delay", enableSql = true)],
  durableObjectStorage = (localDisk = "disk"),
  bindings = [(name = "O", durableObjectNamespace = "O")],
);
