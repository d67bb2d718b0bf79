"""Emulators that speak each instrument's wire protocol, driven by physics models of a virtual cell."""
