"""Experiment procedures (PyMeasure Procedures), by the name used on the command line."""

from labctl.procedures.activation import ActivationProcedure
from labctl.procedures.base import LabProcedure, ParameterError
from labctl.procedures.ccd import CCDProcedure
from labctl.procedures.ce import CyclingCEProcedure, ReservoirCEProcedure
from labctl.procedures.deposition import DepositionProcedure
from labctl.procedures.eis import EISProcedure
from labctl.procedures.fullcell import (
    ChargingCCDProcedure,
    FullCellProcedure,
    HalfDepthProcedure,
    RateCapabilityProcedure,
)  # fmt: skip
from labctl.procedures.hold import HoldProcedure
from labctl.procedures.insitu_eis import InSituEISProcedure

PROCEDURES: dict[str, type[LabProcedure]] = {
    p.NAME: p
    for p in (
        CCDProcedure, EISProcedure, InSituEISProcedure, ReservoirCEProcedure, CyclingCEProcedure,
        FullCellProcedure, HalfDepthProcedure, RateCapabilityProcedure, ChargingCCDProcedure, HoldProcedure,
        DepositionProcedure, ActivationProcedure,
    )
}  # fmt: skip

__all__ = ["PROCEDURES", "LabProcedure", "ParameterError"]
