"""The national fleet service: heartbeats in, dashboard, alerts and ``/metrics`` out.

Modules, from the wire inwards:

* ``models``    decode and validate a heartbeat (pure; 400s name the field)
* ``tokens``    hub tokens: hash for Bearer auth, wrapped secret for the HMAC (trade-off
                documented there)
* ``db``        the fleet's own SQLite DB (WAL, one writer thread, group commit); the
                ingest transaction with the replay rule
* ``alerts``    pure alert rules and the red/amber/green state
* ``queries``   read-side SQL shared by the API, pages and metrics
* ``metrics``   Prometheus text exposition
* ``charts``, ``pages``  server-rendered HTML with inline SVG
* ``auth``      fleet users (viewer/admin), logins with throttling and audit, sessions
* ``certs``     hub certificates (#12): CSR checks, background ACME orders, A records
* ``acme_issuer``  DNS-01 orders through certbot's ``acme`` library
* ``dns``       national's DNS: RFC 2136 updates with TSIG, or a command hook
* ``releases``  signed RAUC bundles national adds (#13): ``rauc info`` checks, storage
* ``rollouts``  which release each hub should run; hubs' update reports and progress
* ``updates_pages``  the dashboard's update pages
* ``web``       the aiohttp app (``create_app``, ``start``); who may call what (``ROUTES``)
* ``simulator``, ``geography``  realistic simulated fleets across Bangladesh
* ``command``   ``appliance fleet`` (serve, add-hub, set-tls-name, add-user, simulate,
                add-release, rollout, stop-rollout)
"""
