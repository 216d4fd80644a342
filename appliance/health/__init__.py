"""The hardware and health agent (``appliance health``).

Modules, by what they hold:

- ``system``: psutil/procfs readings (CPU, load, memory, disk, temperature, boot id, uptime)
- ``throttle``: Raspberry Pi throttle/under-voltage bitmask and its decoding
- ``storage``: SD write volume (/proc/diskstats) and read-only remount (/proc/mounts)
- ``power``: power-cut counting with a marker file
- ``clock``: NTP synchronisation state
- ``integrity``: SQLite quick_check on a slow schedule
- ``syncstatus``: sync backlog, lag and conflicts from the store
- ``sample``: one sample of all of the above, and its storage with retention
- ``udev``: modem and USB storage events (pyudev)
- ``leds`` / ``button``: front panel through gpiozero (see LEDS.md)
- ``heartbeat``: the fleet heartbeat contract, queue and sender
- ``updater``: software updates (#13): the fleet's offered release, downloaded
  (``download``, HTTP Range), checked and installed into the other slot through the
  ``rauc`` seam, rebooted into in the quiet hours (``quiet``), committed or rolled back
- ``agent`` / ``command``: the agent loop and the CLI entry point
- ``api``: the ``/api/hub/health`` payload
"""
