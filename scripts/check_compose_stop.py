#!/usr/bin/env python3
"""Reads `docker-compose config` on stdin; fails when a long-running feedpipe service may be
SIGKILLed before it can finish its shutdown: every role exits within --drain-timeout-ms +
--shutdown-grace-ms + 5 s of SIGTERM (README "Shutdown"), 10 + 1 + 5 s with the defaults of
commands/role_settings.cpp, unless its command raises them."""
import re
import sys

import yaml

DEFAULT_DRAIN_MS, DEFAULT_GRACE_MS, WATCHDOG_MS = 10000, 1000, 5000
ONE_SHOT = {"migrate", "submit", "parse"}


def duration_ms(text):
    """Compose's durations: 30s, 1m30s, 1500ms, 1h."""
    total, found = 0.0, False
    for value, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", str(text)):
        found = True
        total += float(value) * {"h": 3600e3, "m": 60e3, "s": 1e3, "ms": 1, "us": 1e-3}[unit]
    return total if found else None


def flag_ms(command, name, default):
    for i, arg in enumerate(command):
        if arg == name and i + 1 < len(command):
            return int(command[i + 1])
        if arg.startswith(name + "="):
            return int(arg.split("=", 1)[1])
    return default


failures = []
for name, service in (yaml.safe_load(sys.stdin).get("services") or {}).items():
    if not str(service.get("image", "")).startswith("feedpipe"):
        continue
    command = service.get("command") or []
    if isinstance(command, str):
        command = command.split()
    if not command or command[0] in ONE_SHOT:
        continue
    needed = flag_ms(command, "--drain-timeout-ms", DEFAULT_DRAIN_MS) + \
        flag_ms(command, "--shutdown-grace-ms", DEFAULT_GRACE_MS) + WATCHDOG_MS
    given = duration_ms(service.get("stop_grace_period", "10s"))  # Docker's default: 10 s
    if given is None or given < needed:
        failures.append(f"service {name} ({command[0]}): stop_grace_period {service.get('stop_grace_period', '10s (default)')} "
                        f"is less than the {needed / 1000:g} s its shutdown may take")
for f in failures:
    print("compose.yaml: " + f, file=sys.stderr)
sys.exit(1 if failures else 0)
