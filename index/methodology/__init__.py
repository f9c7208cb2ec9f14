"""The methodology in force. Every published value records this version."""

from __future__ import annotations

METHODOLOGY_VERSION = "2025.1"
BEIJING_UTC_OFFSET_MS = 8 * 3_600_000
