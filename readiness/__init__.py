"""Readiness: decide whether a distilled model may ship."""
