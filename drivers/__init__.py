"""Instrument drivers: wire protocol only, no experiment logic."""
