"""Experiment procedures (PyMeasure Procedures), by the name used on the command line."""

from labctl.procedures.base import LabProcedure, ParameterError
from labctl.procedures.ccd import CCDProcedure

PROCEDURES: dict[str, type[LabProcedure]] = {p.NAME: p for p in (CCDProcedure,)}

__all__ = ["PROCEDURES", "CCDProcedure", "LabProcedure", "ParameterError"]
