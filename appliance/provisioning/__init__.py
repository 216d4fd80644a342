"""Provisioning: per-upazila hub.toml files, first-boot apply, supervisord configuration.

- ``generate``: one provisioning file per upazila from the national org-unit tree;
- ``apply``: install a provisioning file from the boot partition (first boot);
- ``supervisord``: the supervisord.conf (and litestream.yml) the systemd unit runs;
- ``watchdog``: the supervisord event listener that feeds systemd's watchdog.

This ``__init__`` imports nothing on purpose: ``python -m appliance.provisioning.watchdog``
must stay independent of the rest of the appliance (a broken hub must not break the
process that tells systemd the hub is broken).
"""
