"""Promotion through channels: gates, approvals, and the signed moves of a channel's head."""
