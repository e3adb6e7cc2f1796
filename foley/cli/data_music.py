"""Placeholder: commands are being written."""

from __future__ import annotations
