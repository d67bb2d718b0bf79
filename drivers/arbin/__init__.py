"""Arbin cyclers through the Console TCP/IP Interface (CTI)."""
