"""Solartron analytical instruments over GPIB (or a GPIB-Ethernet gateway)."""
