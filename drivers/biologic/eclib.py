"""EClib (EClib64.dll of the EC-Lab Development Package) through ctypes: structures, prototypes, errors, calls.

The library object is passed in (on Windows ``EClib(ctypes.WinDLL(path_to_EClib64_dll))``), so anything with the
same ``BL_*`` attributes, such as a test's fake, stands in for the DLL. :class:`EClib` sets each function's
``argtypes`` and ``restype`` from :data:`PROTOTYPES` and turns every non-zero return code into an
:class:`EClibError` naming the call and the meaning. Out-parameters are passed as ctypes pointers.

The DLL's conventions are kept: a device ID from :meth:`EClib.connect` goes into every call, and channels are
0-based, 0..15 (BioLogic's kbio Python layer numbers them from 1; physical channel 1 is 0 here). Structures are
packed on 4 bytes (``#pragma pack(4)`` in BLStructs.h), so ``TDataInfos.StartTime`` sits at offset 28.

Sources: BioLogic's C header (BLFunctions.h, BLStructs.h, 2013) in a public repository, BioLogic's kbio Python layer
(vendored by pyeclab), and a public copy of BioLogic's Delphi unit EClib.pas; see docs/instruments/biologic-eclib.md.

Unconfirmed:

- ``TChannelInfos``: the 2013 C header has 21 fields (its 11th and 12th reserved, FloatFormat and CPUCIE last), the
  Delphi unit and kbio 19 (MUXboard, GPRAboard, no last two). The structure here has the 21, so a DLL writing
  either fills it without overrunning it; from a 19-field DLL the last two read 0.
- ``BL_UpdateParameters`` takes ``TEccParams`` by value (C header and Delphi unit agree; kbio passes a pointer).
- A positive return code is treated as an error too (kbio does; PyExpLabSys checks only negative codes).
- Text buffer sizes (64 for the version, 256 for an error message, 4096 for a channel message) are kbio's.
- The firmware pair ``kernel4.bin`` + ``Vmp_iv_0395_aa.xlx`` for the SP-200's family (BioLogic's C++ example, a copy
  not traced to a repository), and that a VMP3 ``.ecc`` is what yields -401 on it (the hint in :data:`HINTS`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from ctypes import (
    POINTER,
    Array,
    Structure,
    c_bool,
    c_char,
    c_char_p,
    c_double,
    c_float,
    c_int32,
    c_uint8,
    c_uint32,
    create_string_buffer,
    pointer,
)
from enum import IntEnum

from labctl.drivers.biologic.data import BUFFER_WORDS, DataBlock
from labctl.drivers.biologic.techniques import Param, ParamType

NB_CH = 16  # channels per device; arrays of channel flags and results have this length
LABEL_BYTES = 64  # TEccParam.ParamStr
FIRMWARE_VMP300 = ("kernel4.bin", "Vmp_iv_0395_aa.xlx")  # channel firmware and FPGA file of the SP-200's family
ERR_NOERROR = 0


class State(IntEnum):
    """``TCurrentValues.State`` / ``TChannelInfos.State``."""

    STOP = 0
    RUN = 1
    PAUSE = 2


DEVICE_SP200 = 21  # TDeviceInfos.DeviceCode (KBIO_DEV_SP200)


def _int32_fields(*names: str) -> list[tuple[str, type]]:
    return [(name, c_int32) for name in names]


class TDeviceInfos(Structure):
    _pack_ = 4
    _fields_ = _int32_fields(
        "DeviceCode", "RAMSize", "CPU", "NumberOfChannels", "NumberOfSlots", "FirmwareVersion",
        "FirmwareDate_yyyy", "FirmwareDate_mm", "FirmwareDate_dd", "HTdisplayOn", "NbOfConnectedPC",
    )  # fmt: skip


class TChannelInfos(Structure):
    _pack_ = 4
    _fields_ = _int32_fields(
        "Channel", "BoardVersion", "BoardSerialNumber", "FirmwareCode", "FirmwareVersion", "XilinxVersion",
        "AmpCode", "NbAmps", "Lcboard", "Zboard", "MUXboard", "GPRAboard", "MemSize", "MemFilled", "State",
        "MaxIRange", "MinIRange", "MaxBandwidth", "NbOfTechniques", "FloatFormat", "CPUCIE",
    )  # fmt: skip


class TCurrentValues(Structure):
    _pack_ = 4
    _fields_ = [
        ("State", c_int32), ("MemFilled", c_int32), ("TimeBase", c_float), ("Ewe", c_float),
        ("EweRangeMin", c_float), ("EweRangeMax", c_float), ("Ece", c_float), ("EceRangeMin", c_float),
        ("EceRangeMax", c_float), ("Eoverflow", c_int32), ("I", c_float), ("IRange", c_int32),
        ("Ioverflow", c_int32), ("ElapsedTime", c_float), ("Freq", c_float), ("Rcomp", c_float),
        ("Saturation", c_int32), ("OptErr", c_int32), ("OptPos", c_int32),
    ]  # fmt: skip


class TDataInfos(Structure):
    _pack_ = 4
    _fields_ = [
        *_int32_fields("IRQskipped", "NbRows", "NbCols", "TechniqueIndex", "TechniqueID", "ProcessIndex", "loop"),
        ("StartTime", c_double),
        ("MuxPad", c_int32),
    ]


TDataBuffer = c_uint32 * BUFFER_WORDS


class TEccParam(Structure):
    _pack_ = 4
    _fields_ = [("ParamStr", c_char * LABEL_BYTES), *_int32_fields("ParamType", "ParamVal", "ParamIndex")]


class TEccParams(Structure):
    _pack_ = 4
    _fields_ = [("len", c_int32), ("pParams", POINTER(TEccParam))]


class THardwareConf(Structure):
    _pack_ = 4
    _fields_ = _int32_fields("Conn", "Ground")


_i32p, _u32p, _u8p = POINTER(c_int32), POINTER(c_uint32), POINTER(c_uint8)

# name -> (restype, argtypes), from BLFunctions.h; ID is int32, a channel uint8 (0-based)
PROTOTYPES: dict[str, tuple[type, list[type]]] = {
    "BL_GetLibVersion": (c_int32, [c_char_p, _u32p]),
    "BL_GetErrorMsg": (c_int32, [c_int32, c_char_p, _u32p]),
    "BL_Connect": (c_int32, [c_char_p, c_uint8, _i32p, POINTER(TDeviceInfos)]),
    "BL_Disconnect": (c_int32, [c_int32]),
    "BL_TestConnection": (c_int32, [c_int32]),
    "BL_LoadFirmware": (c_int32, [c_int32, _u8p, _i32p, c_uint8, c_bool, c_bool, c_char_p, c_char_p]),
    "BL_IsChannelPlugged": (c_bool, [c_int32, c_uint8]),
    "BL_GetChannelsPlugged": (c_int32, [c_int32, _u8p, c_uint8]),
    "BL_GetChannelInfos": (c_int32, [c_int32, c_uint8, POINTER(TChannelInfos)]),
    "BL_GetMessage": (c_int32, [c_int32, c_uint8, c_char_p, _u32p]),
    "BL_GetHardConf": (c_int32, [c_int32, c_uint8, POINTER(THardwareConf)]),
    "BL_SetHardConf": (c_int32, [c_int32, c_uint8, THardwareConf]),
    "BL_DefineBoolParameter": (c_int32, [c_char_p, c_bool, c_int32, POINTER(TEccParam)]),
    "BL_DefineSglParameter": (c_int32, [c_char_p, c_float, c_int32, POINTER(TEccParam)]),
    "BL_DefineIntParameter": (c_int32, [c_char_p, c_int32, c_int32, POINTER(TEccParam)]),
    "BL_LoadTechnique": (c_int32, [c_int32, c_uint8, c_char_p, TEccParams, c_bool, c_bool, c_bool]),
    "BL_UpdateParameters": (c_int32, [c_int32, c_uint8, c_int32, TEccParams, c_char_p]),
    "BL_StartChannel": (c_int32, [c_int32, c_uint8]),
    "BL_StopChannel": (c_int32, [c_int32, c_uint8]),
    "BL_StartChannels": (c_int32, [c_int32, _u8p, _i32p, c_uint8]),
    "BL_StopChannels": (c_int32, [c_int32, _u8p, _i32p, c_uint8]),
    "BL_GetCurrentValues": (c_int32, [c_int32, c_uint8, POINTER(TCurrentValues)]),
    "BL_GetData": (c_int32, [c_int32, c_uint8, POINTER(TDataBuffer), POINTER(TDataInfos), POINTER(TCurrentValues)]),
    "BL_ConvertNumericIntoSingle": (c_int32, [c_uint32, POINTER(c_float)]),
    "BL_GetOptErr": (c_int32, [c_int32, c_uint8, _i32p, _i32p]),
}

# code -> (name, meaning), from BLStructs.h's TErrorCodes_e
ERRORS: dict[int, tuple[str, str]] = {
    -1: ("ERR_GEN_NOTCONNECTED", "no instrument connected"),
    -2: ("ERR_GEN_CONNECTIONINPROGRESS", "connection in progress"),
    -3: ("ERR_GEN_CHANNELNOTPLUGGED", "selected channel(s) unplugged"),
    -4: ("ERR_GEN_INVALIDPARAMETERS", "invalid function parameters"),
    -5: ("ERR_GEN_FILENOTEXISTS", "selected file does not exist"),
    -6: ("ERR_GEN_FUNCTIONFAILED", "function failed"),
    -7: ("ERR_GEN_NOCHANNELSELECTED", "no channel selected"),
    -8: ("ERR_GEN_INVALIDCONF", "invalid instrument configuration"),
    -9: ("ERR_GEN_ECLAB_LOADED", "EC-Lab firmware loaded on the instrument"),
    -10: ("ERR_GEN_LIBNOTCORRECTLYLOADED", "library not correctly loaded in memory"),
    -11: ("ERR_GEN_USBLIBRARYERROR", "USB library not correctly loaded in memory"),
    -12: ("ERR_GEN_FUNCTIONINPROGRESS", "function of the library already in progress"),
    -13: ("ERR_GEN_CHANNEL_RUNNING", "selected channel(s) already used"),
    -14: ("ERR_GEN_DEVICE_NOTALLOWED", "device not allowed"),
    -15: ("ERR_GEN_UPDATEPARAMETERS", "invalid update function parameters"),
    -101: ("ERR_INSTR_VMEERROR", "internal instrument communication failed"),
    -102: ("ERR_INSTR_TOOMANYDATA", "too many data to transfer from the instrument (device error)"),
    -103: ("ERR_INSTR_RESPNOTPOSSIBLE", "selected channel(s) unplugged (device error)"),
    -104: ("ERR_INSTR_RESPERROR", "instrument response error"),
    -105: ("ERR_INSTR_MSGSIZEERROR", "invalid message size"),
    -200: ("ERR_COMM_COMMFAILED", "communication failed with the instrument"),
    -201: ("ERR_COMM_CONNECTIONFAILED", "cannot establish connection with the instrument"),
    -202: ("ERR_COMM_WAITINGACK", "waiting for the instrument response"),
    -203: ("ERR_COMM_INVALIDIPADDRESS", "invalid IP address"),
    -204: ("ERR_COMM_ALLOCMEMFAILED", "cannot allocate memory in the instrument"),
    -205: ("ERR_COMM_LOADFIRMWAREFAILED", "cannot load firmware into selected channel(s)"),
    -206: ("ERR_COMM_INCOMPATIBLESERVER", "communication firmware not compatible with the library"),
    -207: ("ERR_COMM_MAXCONNREACHED", "maximum number of allowed connections reached"),
    -300: ("ERR_FIRM_FIRMFILENOTEXISTS", "cannot find the firmware (kernel) file"),
    -301: ("ERR_FIRM_FIRMFILEACCESSFAILED", "cannot read the firmware (kernel) file"),
    -302: ("ERR_FIRM_FIRMINVALIDFILE", "invalid firmware (kernel) file"),
    -303: ("ERR_FIRM_FIRMLOADINGFAILED", "cannot load the firmware (kernel) on the selected channel(s)"),
    -304: ("ERR_FIRM_XILFILENOTEXISTS", "cannot find the FPGA (Xilinx) file"),
    -305: ("ERR_FIRM_XILFILEACCESSFAILED", "cannot read the FPGA (Xilinx) file"),
    -306: ("ERR_FIRM_XILINVALIDFILE", "invalid FPGA (Xilinx) file"),
    -307: ("ERR_FIRM_XILLOADINGFAILED", "cannot load the FPGA (Xilinx) file on the selected channel(s)"),
    -308: ("ERR_FIRM_FIRMWARENOTLOADED", "no firmware loaded on the selected channel(s)"),
    -309: ("ERR_FIRM_FIRMWAREINCOMPATIBLE", "loaded firmware not compatible with the library"),
    -400: ("ERR_TECH_ECCFILENOTEXISTS", "cannot find the selected ECC file"),
    -401: ("ERR_TECH_INCOMPATIBLEECC", "ECC file not compatible with the channel firmware"),
    -402: ("ERR_TECH_ECCFILECORRUPTED", "ECC file corrupted"),
    -403: ("ERR_TECH_LOADTECHNIQUEFAILED", "cannot load the ECC file"),
    -404: ("ERR_TECH_DATACORRUPTED", "data returned by the instrument are corrupted"),
    -405: ("ERR_TECH_MEMFULL", "cannot load techniques: full memory"),
}

# What to do about the errors an SP-200 setup most likely meets first
HINTS = {
    -9: "EC-Lab owns the channel; close EC-Lab, then load the library's firmware (kernel4.bin)",
    -308: "load the firmware first (BL_LoadFirmware with kernel4.bin and Vmp_iv_0395_aa.xlx)",
    -401: "the SP-200 (VMP-300 family) needs the *4.ecc files (ocv4.ecc, peis4.ecc, ...), not the VMP3 ones",
}


class EClibError(Exception):
    """An EClib call returned an error code: ``call`` (e.g. "BL_LoadTechnique"), ``code`` and ``meaning``."""

    def __init__(self, call: str, code: int, meaning: str) -> None:
        super().__init__(f"{call} failed with EClib error {code}: {meaning}")
        self.call, self.code, self.meaning = call, code, meaning

    @classmethod
    def from_code(cls, call: str, code: int) -> EClibError:
        """The error for ``code``, its meaning read from BLStructs.h's table (and a hint for the usual ones)."""
        name, text = ERRORS.get(code, ("unknown", "a code EClib's header does not list"))
        hint = HINTS.get(code)
        return cls(call, code, f"{text} ({name})" + (f"; {hint}" if hint else ""))


def _channel(channel: int) -> int:
    if isinstance(channel, bool) or not isinstance(channel, int) or not 0 <= channel < NB_CH:
        raise ValueError(f"channel {channel!r}: EClib channels are 0-based, 0..{NB_CH - 1} (physical channel 1 is 0)")
    return channel


def _c_string(name: str, value: str | os.PathLike[str] | None) -> bytes | None:
    """A C string for the DLL, which takes ANSI strings: ValueError unless plain ASCII."""
    if value is None:
        return None
    text = os.fspath(value)
    try:
        return text.encode("ascii")
    except UnicodeEncodeError:
        raise ValueError(f"{name} {text!r} has non-ASCII characters, which EClib's C strings cannot carry; "
                         f"use an ASCII path or name") from None


def _channel_flags(channels: Iterable[int]) -> Array[c_uint8]:
    flags = (c_uint8 * NB_CH)()
    for ch in channels:
        flags[_channel(ch)] = 1
    if not any(flags):
        raise ValueError("no channel selected; give at least one 0-based channel")
    return flags


class EClib:
    """The ``BL_*`` calls of a loaded EClib, with its prototypes applied; every failing call raises EClibError."""

    def __init__(self, lib: object) -> None:
        self._lib = lib
        for name, (restype, argtypes) in PROTOTYPES.items():
            function = getattr(lib, name, None)
            if function is None:
                raise AttributeError(f"{lib!r} has no {name}; load EClib64.dll of the EC-Lab Development Package")
            function.restype, function.argtypes = restype, argtypes

    def _call(self, name: str, *args: object) -> None:
        code = getattr(self._lib, name)(*args)
        if code != ERR_NOERROR:
            raise EClibError.from_code(name, int(code))

    def _text(self, name: str, size: int, *head: object) -> str:
        buffer, length = create_string_buffer(size), c_uint32(size)
        self._call(name, *head, buffer, pointer(length))
        return buffer.value.decode("latin-1")

    def _per_channel(self, name: str, device_id: int, channels: Iterable[int], *tail: object) -> None:
        """A call on a set of channels whose per-channel results are checked too."""
        flags, results = _channel_flags(channels), (c_int32 * NB_CH)()
        self._call(name, device_id, flags, results, NB_CH, *tail)
        for ch in range(NB_CH):
            if flags[ch] and results[ch] != ERR_NOERROR:
                raise EClibError.from_code(f"{name} (channel {ch})", results[ch])

    # general
    def lib_version(self) -> str:
        return self._text("BL_GetLibVersion", 64)

    def error_message(self, code: int) -> str:
        """The DLL's own text for an error code."""
        return self._text("BL_GetErrorMsg", 256, code)

    # communication
    def connect(self, address: str, timeout_s: int = 5) -> tuple[int, TDeviceInfos]:
        """Connect to ``address`` ("USB0" or an IP address); the device ID for every other call, and its infos."""
        if isinstance(timeout_s, bool) or not isinstance(timeout_s, int) or not 1 <= timeout_s <= 255:
            raise ValueError(f"timeout_s {timeout_s!r}: BL_Connect takes whole seconds 1..255 (5 recommended)")
        if not address:
            raise ValueError("address is empty; give 'USB0' or the instrument's IP address")
        device_id, infos = c_int32(), TDeviceInfos()
        self._call("BL_Connect", _c_string("address", address), timeout_s, pointer(device_id), pointer(infos))
        return device_id.value, infos

    def disconnect(self, device_id: int) -> None:
        self._call("BL_Disconnect", device_id)

    def test_connection(self, device_id: int) -> None:
        self._call("BL_TestConnection", device_id)

    # firmware and channels
    def load_firmware(self, device_id: int, channels: Iterable[int], kernel: str | os.PathLike[str] | None = FIRMWARE_VMP300[0],
                      fpga: str | os.PathLike[str] | None = FIRMWARE_VMP300[1], *, force: bool = True,
                      show_gauge: bool = False) -> None:
        """Load the library's channel firmware (None: the DLL's default file); each channel's result is checked."""
        self._per_channel("BL_LoadFirmware", device_id, channels, show_gauge, force,
                          _c_string("kernel", kernel), _c_string("fpga", fpga))

    def channels_plugged(self, device_id: int) -> list[int]:
        """The 0-based channels the device has."""
        plugged = (c_uint8 * NB_CH)()
        self._call("BL_GetChannelsPlugged", device_id, plugged, NB_CH)
        return [ch for ch in range(NB_CH) if plugged[ch]]

    def is_channel_plugged(self, device_id: int, channel: int) -> bool:
        return bool(self._lib.BL_IsChannelPlugged(device_id, _channel(channel)))

    def channel_infos(self, device_id: int, channel: int) -> TChannelInfos:
        infos = TChannelInfos()
        self._call("BL_GetChannelInfos", device_id, _channel(channel), pointer(infos))
        return infos

    def message(self, device_id: int, channel: int) -> str:
        """The channel firmware's next queued message ("" when none)."""
        return self._text("BL_GetMessage", 4096, device_id, _channel(channel))

    def hard_conf(self, device_id: int, channel: int) -> THardwareConf:
        conf = THardwareConf()
        self._call("BL_GetHardConf", device_id, _channel(channel), pointer(conf))
        return conf

    def set_hard_conf(self, device_id: int, channel: int, conn: int, ground: int) -> None:
        """Electrode connection (0 standard, 1 CE to ground) and ground mode (0 grounded, 1 floating)."""
        self._call("BL_SetHardConf", device_id, _channel(channel), THardwareConf(conn, ground))

    def opt_err(self, device_id: int, channel: int) -> tuple[int, int]:
        """The hardware option error code and the position of the option that raised it."""
        code, position = c_int32(), c_int32()
        self._call("BL_GetOptErr", device_id, _channel(channel), pointer(code), pointer(position))
        return code.value, position.value

    # technique parameters
    def _define(self, call: str, label: str, value: bool | int | float, index: int) -> TEccParam:
        raw = _c_string("label", label)
        if not raw or len(raw) >= LABEL_BYTES:
            raise ValueError(f"label {label!r}: an ECC label is 1..{LABEL_BYTES - 1} ASCII characters")
        param = TEccParam()
        self._call(call, raw, value, index, pointer(param))
        return param

    def define_bool(self, label: str, value: bool, index: int = 0) -> TEccParam:
        return self._define("BL_DefineBoolParameter", label, value, index)

    def define_single(self, label: str, value: float, index: int = 0) -> TEccParam:
        return self._define("BL_DefineSglParameter", label, value, index)

    def define_int(self, label: str, value: int, index: int = 0) -> TEccParam:
        return self._define("BL_DefineIntParameter", label, value, index)

    def ecc_params(self, params: Sequence[Param]) -> TEccParams:
        """``TEccParams`` for a validated parameter list (see techniques), each defined by the DLL."""
        define = {ParamType.BOOLEAN: self.define_bool, ParamType.SINGLE: self.define_single,
                  ParamType.INT32: self.define_int}
        array = (TEccParam * len(params))(*(define[p.type](p.label, p.value, p.index) for p in params))
        return TEccParams(len(params), array)  # the structure keeps the array alive

    # techniques and runs
    def load_technique(self, device_id: int, channel: int, ecc_path: str | os.PathLike[str], params: Sequence[Param],
                       *, first: bool = True, last: bool = True, display: bool = False) -> None:
        """Load one technique with its validated parameters (see techniques); for a sequence, call once per
        technique, ``first`` on the first, ``last`` on the last."""
        self._call("BL_LoadTechnique", device_id, _channel(channel), _c_string("ecc_path", ecc_path),
                   self.ecc_params(params), first, last, display)

    def update_parameters(self, device_id: int, channel: int, technique_index: int, params: Sequence[Param],
                          ecc_path: str | os.PathLike[str]) -> None:
        self._call("BL_UpdateParameters", device_id, _channel(channel), technique_index, self.ecc_params(params),
                   _c_string("ecc_path", ecc_path))

    def start_channel(self, device_id: int, channel: int) -> None:
        self._call("BL_StartChannel", device_id, _channel(channel))

    def stop_channel(self, device_id: int, channel: int) -> None:
        self._call("BL_StopChannel", device_id, _channel(channel))

    def start_channels(self, device_id: int, channels: Iterable[int]) -> None:
        self._per_channel("BL_StartChannels", device_id, channels)

    def stop_channels(self, device_id: int, channels: Iterable[int]) -> None:
        self._per_channel("BL_StopChannels", device_id, channels)

    # data
    def current_values(self, device_id: int, channel: int) -> TCurrentValues:
        values = TCurrentValues()
        self._call("BL_GetCurrentValues", device_id, _channel(channel), pointer(values))
        return values

    def get_data(self, device_id: int, channel: int) -> tuple[DataBlock, TCurrentValues]:
        """The next block of data (≤ 1000 words; parse it with data.parse) and the channel's current values."""
        buffer, infos, values = TDataBuffer(), TDataInfos(), TCurrentValues()
        self._call("BL_GetData", device_id, _channel(channel), pointer(buffer), pointer(infos), pointer(values))
        words = min(max(infos.NbRows * infos.NbCols, 0), BUFFER_WORDS)  # parse() refuses a count that overflows
        block = DataBlock(
            technique_id=infos.TechniqueID, process_index=infos.ProcessIndex, rows=infos.NbRows, cols=infos.NbCols,
            words=tuple(buffer[:words]), start_time_s=infos.StartTime, time_base_s=values.TimeBase,
            technique_index=infos.TechniqueIndex, loop=infos.loop,
        )  # fmt: skip
        return block, values

    def convert_numeric_into_single(self, word: int) -> float:
        value = c_float()
        self._call("BL_ConvertNumericIntoSingle", word, pointer(value))
        return value.value
