"""Experiment procedures (PyMeasure Procedures), by the name used on the command line."""

from labctl.procedures.base import LabProcedure, ParameterError
from labctl.procedures.ccd import CCDProcedure
from labctl.procedures.eis import EISProcedure
from labctl.procedures.insitu_eis import InSituEISProcedure

PROCEDURES: dict[str, type[LabProcedure]] = {p.NAME: p for p in (CCDProcedure, EISProcedure, InSituEISProcedure)}

__all__ = ["PROCEDURES", "CCDProcedure", "EISProcedure", "InSituEISProcedure", "LabProcedure", "ParameterError"]
