"""A fake EClib64.dll: every ``BL_*`` call of an SP-200 as a real C function pointer, on emulated channels.

``EClib(FakeEClib({0: channel}))`` loads it in place of the DLL on any OS. Each ``BL_*`` attribute is a ctypes
foreign function pointer to a ``CFUNCTYPE`` callback, so the caller's ``argtypes``/``restype`` apply and every
argument crosses a C boundary: strings and out-pointers as addresses, ``TEccParams`` and ``THardwareConf`` by value,
structures filled through the pointers given. The structures and prototypes are the shared header (BLStructs.h,
BLFunctions.h, as transcribed in labctl.drivers.biologic.eclib); the channels are :class:`SP200Channel` emulators
keyed by their 0-based EClib channel. Calls are serialized by one lock (a bridge server may call from several
threads). A Python exception inside a call is logged with its traceback and returns -6 (ERR_GEN_FUNCTIONFAILED;
False from BL_IsChannelPlugged) rather than vanishing in ctypes.

What is modelled. C: confirmed by a public BioLogic source (H the 2013 C header BLFunctions.h/BLStructs.h, K
BioLogic's kbio Python layer, V a VSP-300 run log in easy-biologic's tests; see docs/instruments/biologic-eclib.md).
E: the emulator's choice, where no public source says.

- Connection. ``BL_Connect`` takes "USB0" or a dotted IPv4 address (C, H), "USB<n>" for n > 0 gives -201 (no
  instrument there) and anything else -203 (E). It fills TDeviceInfos: DeviceCode 21, the SP-200 (C, H);
  NumberOfChannels the channels given, NumberOfSlots the highest channel + 1, communication firmware 11.40 (1140, the
  VMP-300-family version in V) of 2021-06-01, RAMSize 64 MB, NbOfConnectedPC the open connections (E). Device IDs
  count from 1, one per connection (E). A call with an ID not connected, or disconnected, gives -1 (E).
  ``BL_Disconnect`` leaves the channels running, as the instrument runs on its own (E).
- Text out-buffers (BL_GetLibVersion, BL_GetErrorMsg, BL_GetMessage): the size pointer gives the buffer's capacity
  and returns the characters copied (C, H); a longer text is cut to fit with its NUL, excluded from the count (E).
  BL_GetErrorMsg gives H's meaning of each code, -4 for a code H does not list (E).
- Firmware. ``BL_LoadFirmware`` puts the library's firmware on each selected channel: a result per channel, the
  return code 0 once the call itself is valid (E). NULL files are the library's defaults (C, H); only the VMP-300
  family's ``kernel4.bin`` + ``Vmp_iv_0395_aa.xlx`` load (file names C, K; case-insensitive basename E). The VMP3
  family's ``kernel.bin``/``Vmp_ii_0437_a6.xlx`` give -309, any other kernel -300 and other FPGA file -304, as the
  return code and every selected channel's result (E). No channel selected: -7; a selected channel not plugged:
  -3; a running one: -13 (E).
- Who holds a channel. A channel in ``eclab_holds`` carries EC-Lab's firmware (FirmwareCode 1, "firmware for EC-Lab
  software", C, H) until ``BL_LoadFirmware`` with ForceReload replaces it; without ForceReload the firmware "is
  loaded only if not already done" (C, H), so EC-Lab's stays and that channel's result is -9 (E). Every call on a
  channel but BL_GetChannelInfos, BL_IsChannelPlugged, BL_GetChannelsPlugged and BL_GetMessage needs the library's
  firmware: -9 (ERR_GEN_ECLAB_LOADED) on a held channel, else -308 before it is loaded ("channels are unusable
  until the firmware is loaded", C, H; the codes E). Checks run in the order ID (-1), plugged (-3), held (-9),
  firmware (-308).
- ``BL_GetChannelInfos`` fills the structure in every case and returns -308 without firmware (K reads a -308 there
  as "part of info is still valid"): FirmwareCode 0 none, 1 EC-Lab's, 5 the library's (C, H; 5 after loading, V);
  FloatFormat 1 IEEE (C, H); State, MemFilled and NbOfTechniques from the channel; board serial ``serial`` +
  channel, I ranges 100 pA..1 A, bandwidth 9, Z and low-current boards present, 4 MB of memory (E).
- Techniques. ``BL_LoadTechnique``'s ``.ecc`` basename (Windows or POSIX separators, any case) picks the technique:
  :data:`ECC_FILES`, the VMP-300 family's ``*4.ecc`` (C: the file lists of the kbio and easy-biologic packages);
  the VMP3 family's ``ocv.ecc`` and the newer ``ocv5.ecc`` names give -401 (E; the code's meaning C, H), any other
  name -400 (E). No file is read. The TEccParam array is decoded from its C form: ParamStr the ASCII label,
  ParamType 0 int32, 1 bool (ParamVal non-zero), 2 single (ParamVal's bits), ParamIndex the step (C, H). A label
  given at index 0 only is one value, indices 0..n-1 a per-step list; a gap, a repeat, an unknown type, a negative
  length or a NULL array gives -4 (E). The channel then refuses what EClib would (its code: -4 for a wrong or
  missing label, -13 while running); the first/last flags build sequences (C, H). DisplayParams logs the decoded
  parameters (E). Each refusal's reason is queued as a channel message for BL_GetMessage (E: real messages come
  from the channel firmware; none for an unknown device ID).
- ``BL_UpdateParameters`` is not emulated: -6 after the channel checks, with a message (E).
- ``BL_StartChannel``/``BL_StopChannel``: the channel's start and stop; -13 starting a running channel, -9 when
  another emulated instrument drives the cell (CellHeld), -6 with no complete sequence (the channel's codes).
  Stopping a stopped channel succeeds (E). The plural calls give a result per selected channel, -7 for none, and
  return 0 (E; per-channel results C, H).
- Data. ``BL_GetCurrentValues`` and BL_GetData's TCurrentValues: State 0 STOP / 1 RUN, Ewe, I, ElapsedTime, Freq,
  MemFilled in bytes (C, H for the fields); TimeBase :data:`TIME_BASE_S`, Ewe/Ece ranges ±10 V, Ece 0 and the
  overflow, range, Rcomp and option fields 0 (E). ``BL_GetData`` moves the oldest rows of one technique and process
  that fit the 1000-word buffer (C, H), with TDataInfos NbRows, NbCols (words per row), TechniqueIndex, TechniqueID,
  ProcessIndex, loop and StartTime, the technique run's start in s since the channel started (field meanings C, H).
  A time column is two words t_high, t_low counting TimeBase from StartTime, so time = StartTime + TimeBase·count
  (the counter C, K; adding StartTime as the public wrappers do), rounded to the nearest count; a single is the
  float32's bits (FloatFormat 1 = IEEE, C, H), an integer column a uint32. No rows: NbRows, NbCols and the
  technique fields 0 (E). The state is read before the rows (MemFilled then less what was moved), so "STOP and no
  rows" is final even while another thread advances the clock.
- ``BL_Define{Bool,Sgl,Int}Parameter`` fill the TEccParam given (C, H); -4 for an empty or 64-byte label or a
  negative index (E). ``BL_ConvertNumericIntoSingle`` is the IEEE bit-cast (C for IEEE channels, H).
  ``BL_GetHardConf``/``BL_SetHardConf`` keep Conn 0..3 and Ground 0..1 (C, H), else -4; standard and grounded at
  first (E). ``BL_GetOptErr`` reports no option error (0, 0) (E).

TimeBase: 24 µs, stored as the float32 TCurrentValues carries (2.4000000848900527e-05 s). C for the family: the
manual's PEIS page gives a 24 µs time base, and the VSP-300 log (V) counts 41667 for a row recorded at 1 s, which
is round(1 s / 24 µs); counts here are of the float32 value, so a client reproduces each time within 12 µs.
"""

from __future__ import annotations

import ctypes
import ipaddress
import logging
import ntpath
import struct
import threading
from collections import deque
from collections.abc import Callable, Collection, Mapping
from ctypes import CFUNCTYPE, c_char_p, c_float, c_void_p
from typing import Any

from labctl.drivers.biologic.eclib import (
    ERRORS,
    LABEL_BYTES,
    NB_CH,
    PROTOTYPES,
    TChannelInfos,
    TCurrentValues,
    TDataBuffer,
    TDataInfos,
    TDeviceInfos,
    TEccParam,
    TEccParams,
    THardwareConf,
)
from labctl.sim_instruments.sp200 import CurrentValues, DataChunk, SP200Channel
from labctl.sim_instruments.sp200_techniques import SINGLE, TECHNIQUE_IDS, TIME, TechniqueRefused

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

# TErrorCodes_e (BLStructs.h), the ones the fake returns itself
OK, NOT_CONNECTED, NOT_PLUGGED, INVALID_PARAMETERS, FUNCTION_FAILED = 0, -1, -3, -4, -6
NO_CHANNEL_SELECTED, ECLAB_LOADED, CHANNEL_RUNNING = -7, -9, -13
CONNECTION_FAILED, INVALID_IP = -201, -203
KERNEL_NOT_FOUND, FPGA_NOT_FOUND, FIRMWARE_NOT_LOADED, FIRMWARE_INCOMPATIBLE = -300, -304, -308, -309
ECC_NOT_FOUND, ECC_INCOMPATIBLE = -400, -401

DEVICE_SP200 = 21
FIRMWARE_NONE, FIRMWARE_ECLAB, FIRMWARE_KERNEL = 0, 1, 5  # TFirmwareCode_e
KERNEL_FILE, FPGA_FILE = "kernel4.bin", "Vmp_iv_0395_aa.xlx"  # the VMP-300 family's channel firmware
_VMP3_FIRMWARE = ("kernel.bin", "vmp_ii_0437_a6.xlx")
LIB_VERSION = "6.04 (labctl fake EClib)"
LIB_DIR = "fake-eclib"  # point the driver's EClib directory here: only the .ecc basenames matter
ECC_FILES = {f"{name.lower()}4.ecc": name for name in TECHNIQUE_IDS}  # ocv4.ecc -> OCV, cplimit4.ecc -> CPLIMIT, ...
_OTHER_FAMILIES = {f"{name.lower()}{suffix}.ecc" for name in TECHNIQUE_IDS for suffix in ("", "5")}  # VMP3, newer
TIME_BASE_S = c_float(24e-6).value  # what TCurrentValues.TimeBase carries; counts are of this value
BUFFER_WORDS = TDataBuffer._length_
E_RANGE_V = 10.0
_ERROR_TEXTS = {OK: "no error", **{code: meaning for code, (_, meaning) in ERRORS.items()}}


def _text_at(address: int | None) -> str | None:
    """The C string at ``address`` (None for NULL), bytes read as Latin-1 so nothing is refused on the way in."""
    return None if address is None else ctypes.string_at(address).decode("latin-1")


def _copy_text(text: str, buffer: int | None, size: Any) -> None:
    """Copy ``text`` into a C buffer whose capacity ``*size`` gives; ``*size`` returns the characters copied."""
    if buffer is None or not size or size[0] == 0:
        raise TechniqueRefused(INVALID_PARAMETERS, "a text buffer and its size (> 0) are needed")
    data = text.encode("ascii", "replace")[: size[0] - 1]
    ctypes.memmove(buffer, data + b"\0", len(data) + 1)
    size[0] = len(data)


def _single_bits(value: float) -> int:
    """The uint32 whose bits are ``value`` as an IEEE-754 single."""
    return struct.unpack("<I", struct.pack("<f", value))[0]


def _signed(word: int) -> int:
    return word - (1 << 32) if word & 0x80000000 else word


def _valid_ip(address: str) -> bool:
    try:
        ipaddress.IPv4Address(address)
    except ValueError:
        return False
    return True


def _technique(path: str | None) -> str:
    """The technique an .ecc path names; -401 for another family's file, -400 for any other name."""
    name = ntpath.basename(path or "").lower()  # ntpath splits on both \\ and /
    if name in ECC_FILES:
        return ECC_FILES[name]
    if name in _OTHER_FAMILIES:
        raise TechniqueRefused(ECC_INCOMPATIBLE, f"{path!r} is not a VMP-300-family technique file; the SP-200 "
                               f"takes the *4.ecc files ({', '.join(ECC_FILES)})")
    raise TechniqueRefused(ECC_NOT_FOUND, f"no technique file {path!r}; the SP-200's are {', '.join(ECC_FILES)}")


def _param_value(p: TEccParam) -> object:
    if p.ParamType == 0:
        return p.ParamVal
    if p.ParamType == 1:
        return p.ParamVal != 0
    if p.ParamType == 2:
        return struct.unpack("<f", struct.pack("<i", p.ParamVal))[0]
    raise TechniqueRefused(INVALID_PARAMETERS, f"{p.ParamStr!r}: ParamType {p.ParamType} is none of 0 int32, 1 bool, 2 single")


def _decode(params: TEccParams) -> dict[str, object]:
    """The channel's parameters from a TEccParams: label -> value, or -> a list for indices 0..n-1."""
    if params.len < 0 or (params.len and not params.pParams):
        raise TechniqueRefused(INVALID_PARAMETERS, f"TEccParams of length {params.len} with array {params.pParams!r}")
    by_label: dict[str, dict[int, object]] = {}
    for k in range(params.len):
        p = params.pParams[k]
        try:
            label = p.ParamStr.decode("ascii")
        except UnicodeDecodeError:
            raise TechniqueRefused(INVALID_PARAMETERS, f"label {p.ParamStr!r} is not ASCII") from None
        values = by_label.setdefault(label, {})
        if p.ParamIndex in values:
            raise TechniqueRefused(INVALID_PARAMETERS, f"{label} index {p.ParamIndex} is given twice")
        values[p.ParamIndex] = _param_value(p)
    decoded: dict[str, object] = {}
    for label, values in by_label.items():
        if sorted(values) != list(range(len(values))):
            raise TechniqueRefused(INVALID_PARAMETERS, f"{label} has indices {sorted(values)}; give 0..{len(values) - 1}")
        decoded[label] = values[0] if len(values) == 1 else [values[i] for i in range(len(values))]
    return decoded


def _chunk_words(chunk: DataChunk) -> list[int]:
    """A chunk's rows as buffer words: times as t_high, t_low counts of TIME_BASE_S from its start."""
    words: list[int] = []
    for row in chunk.rows:
        for (_, kind), value in zip(chunk.columns, row, strict=True):
            if kind == TIME:
                count = max(round((value - chunk.start_time_s) / TIME_BASE_S), 0)
                words += (count >> 32, count & 0xFFFFFFFF)
            elif kind == SINGLE:
                words.append(_single_bits(value))
            else:
                words.append(int(value) & 0xFFFFFFFF)
    return words


def _fill_values(target: TCurrentValues, values: CurrentValues, mem_filled: int) -> None:
    ctypes.memset(ctypes.addressof(target), 0, ctypes.sizeof(target))
    target.State, target.MemFilled, target.TimeBase = values.state, mem_filled, TIME_BASE_S
    target.Ewe, target.I, target.ElapsedTime, target.Freq = values.ewe_V, values.i_A, values.elapsed_s, values.freq_Hz
    target.EweRangeMin = target.EceRangeMin = -E_RANGE_V
    target.EweRangeMax = target.EceRangeMax = E_RANGE_V


class FakeEClib:
    """EClib64.dll for the SP200Channel emulators ``channels`` (0-based EClib channel -> channel); those in
    ``eclab_holds`` start with EC-Lab's firmware on them. Each ``BL_*`` attribute is a C function pointer."""

    def __init__(self, channels: Mapping[int, SP200Channel], *, eclab_holds: Collection[int] = (),
                 serial: int = 2001) -> None:
        if not channels or any(not isinstance(ch, int) or not 0 <= ch < NB_CH for ch in channels):
            raise ValueError(f"channels: give at least one, keyed by 0-based EClib channel 0..{NB_CH - 1}")
        if not set(eclab_holds) <= set(channels):
            raise ValueError(f"eclab_holds {sorted(eclab_holds)} must be among the channels {sorted(channels)}")
        self._channels = dict(channels)
        self._held = set(eclab_holds)
        self._firmware: set[int] = set()  # channels carrying the library's firmware
        self._serial = serial
        self._connections: set[int] = set()
        self._next_id = 1
        self._messages: dict[int, deque[str]] = {ch: deque() for ch in channels}
        self._techniques = dict.fromkeys(channels, 0)  # loaded in the present sequence
        self._hard_conf = {ch: (0, 0) for ch in channels}
        self._lock = threading.Lock()
        self._callbacks: list[Any] = []  # a freed callback would leave its function pointer dangling
        for name, (restype, argtypes) in PROTOTYPES.items():
            setattr(self, name, self._export(name, restype, argtypes))

    def _export(self, name: str, restype: type, argtypes: list[type]) -> Any:
        """A foreign function pointer to a C callback running ``self._<name>``."""
        impl = getattr(self, f"_{name}")
        failed = False if restype is ctypes.c_bool else FUNCTION_FAILED

        def call(*args: Any) -> Any:
            with self._lock:
                try:
                    return impl(*args)
                except TechniqueRefused as refused:
                    return refused.code
                except Exception:  # ctypes would print it and return garbage
                    log.exception("fake EClib: %s failed", name)
                    return failed

        c_args = [c_void_p if t is c_char_p else t for t in argtypes]  # a char* arrives as its address: in or out
        callback = CFUNCTYPE(restype, *c_args)(call)
        self._callbacks.append(callback)
        return CFUNCTYPE(restype)(ctypes.cast(callback, c_void_p).value)

    # --- checks ---

    def _connected(self, device_id: int) -> None:
        if device_id not in self._connections:
            raise TechniqueRefused(NOT_CONNECTED, f"device ID {device_id} is not connected")

    def _channel(self, device_id: int, ch: int, *, firmware: bool = True) -> SP200Channel:
        """The channel after the checks, in order: ID, plugged and (``firmware``) who holds it."""
        self._connected(device_id)
        if ch not in self._channels:
            raise TechniqueRefused(NOT_PLUGGED, f"channel {ch} is not plugged; the device has {sorted(self._channels)}")
        if firmware and ch in self._held:
            raise TechniqueRefused(ECLAB_LOADED, f"EC-Lab's firmware is on channel {ch}; load {KERNEL_FILE} with ForceReload")
        if firmware and ch not in self._firmware:
            raise TechniqueRefused(FIRMWARE_NOT_LOADED, f"no firmware on channel {ch}; call BL_LoadFirmware first")
        return self._channels[ch]

    def _on(self, device_id: int, ch: int, action: Callable[[SP200Channel], object], *, firmware: bool = True) -> int:
        """Run ``action`` on the checked channel: 0, or a refusal's code with its reason queued as a message
        (but for an unknown device ID)."""
        try:
            action(self._channel(device_id, ch, firmware=firmware))
        except TechniqueRefused as refused:
            if ch in self._messages and refused.code != NOT_CONNECTED:  # not for another client's eyes
                self._messages[ch].append(refused.message)
            return refused.code
        return OK

    def _each(self, device_id: int, flags: Any, results: Any, length: int, one: Callable[[int], int]) -> int:
        """A call on the channels ``flags`` selects, ``one(ch)``'s code in ``results``."""
        self._connected(device_id)
        if not flags or not results or length > NB_CH:
            raise TechniqueRefused(INVALID_PARAMETERS, f"channel and result arrays of length 1..{NB_CH} are needed")
        selected = [ch for ch in range(length) if flags[ch]]
        if not selected:
            raise TechniqueRefused(NO_CHANNEL_SELECTED, "no channel selected")
        for ch in selected:
            results[ch] = one(ch)
        return OK

    # --- general ---

    def _BL_GetLibVersion(self, buffer: int | None, size: Any) -> int:
        _copy_text(LIB_VERSION, buffer, size)
        return OK

    def _BL_GetErrorMsg(self, code: int, buffer: int | None, size: Any) -> int:
        if code not in _ERROR_TEXTS:
            raise TechniqueRefused(INVALID_PARAMETERS, f"no error code {code}")
        _copy_text(_ERROR_TEXTS[code], buffer, size)
        return OK

    # --- communication ---

    def _BL_Connect(self, address: int | None, _timeout: int, device_id: Any, infos: Any) -> int:
        text = _text_at(address) or ""
        if text.upper().startswith("USB") and text[3:].isdigit() and text[3:] != "0":
            raise TechniqueRefused(CONNECTION_FAILED, f"no instrument at {text}; the SP-200 is USB0")
        if text.upper() != "USB0" and not _valid_ip(text):
            raise TechniqueRefused(INVALID_IP, f"{text!r} is neither USB0 nor an IPv4 address")
        if not device_id or not infos:
            raise TechniqueRefused(INVALID_PARAMETERS, "BL_Connect needs pointers for the ID and the device infos")
        new_id, self._next_id = self._next_id, self._next_id + 1
        self._connections.add(new_id)
        device_id[0] = new_id
        infos[0] = TDeviceInfos(
            DeviceCode=DEVICE_SP200, RAMSize=64, NumberOfChannels=len(self._channels),
            NumberOfSlots=max(self._channels) + 1, FirmwareVersion=1140, FirmwareDate_yyyy=2021, FirmwareDate_mm=6,
            FirmwareDate_dd=1, NbOfConnectedPC=len(self._connections),
        )  # fmt: skip
        return OK

    def _BL_Disconnect(self, device_id: int) -> int:
        self._connected(device_id)
        self._connections.discard(device_id)
        return OK

    def _BL_TestConnection(self, device_id: int) -> int:
        self._connected(device_id)
        return OK

    # --- firmware and channels ---

    def _BL_LoadFirmware(self, device_id: int, flags: Any, results: Any, length: int, _gauge: bool, force: bool,
                         kernel: int | None, fpga: int | None) -> int:
        code = self._firmware_files(_text_at(kernel), _text_at(fpga))
        self._each(device_id, flags, results, length, lambda ch: code or self._load_firmware(ch, force))
        return code

    @staticmethod
    def _firmware_files(kernel: str | None, fpga: str | None) -> int:
        """0 if the files are the VMP-300 family's (None: the default), else the code every channel gets."""
        for path, ours, missing in ((kernel, KERNEL_FILE, KERNEL_NOT_FOUND), (fpga, FPGA_FILE, FPGA_NOT_FOUND)):
            name = ntpath.basename(path or ours).lower()
            if name != ours.lower():
                code = FIRMWARE_INCOMPATIBLE if name in _VMP3_FIRMWARE else missing
                log.info("fake EClib: firmware file %r refused (%d); the SP-200 takes %s + %s", path, code,
                         KERNEL_FILE, FPGA_FILE)
                return code
        return OK

    def _load_firmware(self, ch: int, force: bool) -> int:
        if ch not in self._channels:
            return NOT_PLUGGED
        if self._channels[ch].running:
            return CHANNEL_RUNNING
        if ch in self._held and not force:
            return ECLAB_LOADED
        if force or ch not in self._firmware:  # a new firmware forgets the techniques loaded
            self._held.discard(ch)
            self._firmware.add(ch)
            self._techniques[ch] = 0
        return OK

    def _BL_IsChannelPlugged(self, device_id: int, ch: int) -> bool:
        return device_id in self._connections and ch in self._channels

    def _BL_GetChannelsPlugged(self, device_id: int, plugged: Any, size: int) -> int:
        self._connected(device_id)
        if not plugged:
            raise TechniqueRefused(INVALID_PARAMETERS, "BL_GetChannelsPlugged needs an array")
        for ch in range(size):
            plugged[ch] = ch in self._channels
        return OK

    def _BL_GetChannelInfos(self, device_id: int, ch: int, infos: Any) -> int:
        channel = self._channel(device_id, ch, firmware=False)
        if not infos:
            raise TechniqueRefused(INVALID_PARAMETERS, "BL_GetChannelInfos needs a TChannelInfos pointer")
        firmware = FIRMWARE_ECLAB if ch in self._held else FIRMWARE_KERNEL if ch in self._firmware else FIRMWARE_NONE
        infos[0] = TChannelInfos(
            Channel=ch, BoardSerialNumber=self._serial + ch, FirmwareCode=firmware, Lcboard=1, Zboard=1,
            MemSize=4 << 20, MemFilled=channel.current_values().mem_filled_bytes, State=channel.state, MaxIRange=10,
            MinIRange=0, MaxBandwidth=9, NbOfTechniques=self._techniques[ch], FloatFormat=1,
        )  # fmt: skip
        return OK if firmware != FIRMWARE_NONE else FIRMWARE_NOT_LOADED

    def _BL_GetMessage(self, device_id: int, ch: int, buffer: int | None, size: Any) -> int:
        self._channel(device_id, ch, firmware=False)
        queue = self._messages[ch]
        _copy_text(queue[0] if queue else "", buffer, size)
        if queue:
            queue.popleft()
        return OK

    def _BL_GetHardConf(self, device_id: int, ch: int, conf: Any) -> int:
        def get(_: SP200Channel) -> None:
            if not conf:
                raise TechniqueRefused(INVALID_PARAMETERS, "BL_GetHardConf needs a THardwareConf pointer")
            conf[0] = THardwareConf(*self._hard_conf[ch])

        return self._on(device_id, ch, get)

    def _BL_SetHardConf(self, device_id: int, ch: int, conf: THardwareConf) -> int:
        def put(_: SP200Channel) -> None:
            if not (0 <= conf.Conn <= 3 and 0 <= conf.Ground <= 1):
                raise TechniqueRefused(INVALID_PARAMETERS, f"Conn {conf.Conn} (0..3) or Ground {conf.Ground} (0..1) is invalid")
            self._hard_conf[ch] = (conf.Conn, conf.Ground)

        return self._on(device_id, ch, put)

    def _BL_GetOptErr(self, device_id: int, ch: int, code: Any, position: Any) -> int:
        def get(_: SP200Channel) -> None:
            if not code or not position:
                raise TechniqueRefused(INVALID_PARAMETERS, "BL_GetOptErr needs two int pointers")
            code[0] = position[0] = 0

        return self._on(device_id, ch, get)

    # --- technique parameters ---

    def _define(self, label: int | None, param_type: int, word: int, index: int, param: Any) -> int:
        raw = ctypes.string_at(label) if label is not None else b""
        if not raw or len(raw) >= LABEL_BYTES or index < 0 or not param:
            raise TechniqueRefused(INVALID_PARAMETERS, f"label {raw!r} (1..{LABEL_BYTES - 1} bytes), index {index} "
                                   f"(>= 0) and a TEccParam pointer are needed")
        param[0] = TEccParam(raw, param_type, _signed(word), index)
        return OK

    def _BL_DefineBoolParameter(self, label: int | None, value: bool, index: int, param: Any) -> int:
        return self._define(label, 1, int(value), index, param)

    def _BL_DefineSglParameter(self, label: int | None, value: float, index: int, param: Any) -> int:
        return self._define(label, 2, _single_bits(value), index, param)

    def _BL_DefineIntParameter(self, label: int | None, value: int, index: int, param: Any) -> int:
        return self._define(label, 0, value & 0xFFFFFFFF, index, param)

    # --- techniques and runs ---

    def _BL_LoadTechnique(self, device_id: int, ch: int, path: int | None, params: TEccParams, first: bool,
                          last: bool, display: bool) -> int:
        def load(channel: SP200Channel) -> None:
            name, decoded = _technique(_text_at(path)), _decode(params)
            if display:
                log.info("fake EClib: channel %d loads %s with %s", ch, name, decoded)
            channel.load_technique(name, decoded, first=first, last=last)
            self._techniques[ch] = (0 if first else self._techniques[ch]) + 1

        return self._on(device_id, ch, load)

    def _BL_UpdateParameters(self, device_id: int, ch: int, _index: int, _params: TEccParams,
                             _path: int | None) -> int:
        def refuse(_: SP200Channel) -> None:
            raise TechniqueRefused(FUNCTION_FAILED, "BL_UpdateParameters is not emulated; stop the channel and "
                                   "load the sequence again")

        return self._on(device_id, ch, refuse)

    def _BL_StartChannel(self, device_id: int, ch: int) -> int:
        return self._on(device_id, ch, lambda channel: channel.start())

    def _BL_StopChannel(self, device_id: int, ch: int) -> int:
        return self._on(device_id, ch, lambda channel: channel.stop())

    def _BL_StartChannels(self, device_id: int, flags: Any, results: Any, length: int) -> int:
        return self._each(device_id, flags, results, length, lambda ch: self._BL_StartChannel(device_id, ch))

    def _BL_StopChannels(self, device_id: int, flags: Any, results: Any, length: int) -> int:
        return self._each(device_id, flags, results, length, lambda ch: self._BL_StopChannel(device_id, ch))

    # --- data ---

    def _BL_GetCurrentValues(self, device_id: int, ch: int, target: Any) -> int:
        def get(channel: SP200Channel) -> None:
            if not target:
                raise TechniqueRefused(INVALID_PARAMETERS, "BL_GetCurrentValues needs a TCurrentValues pointer")
            values = channel.current_values()
            _fill_values(target.contents, values, values.mem_filled_bytes)

        return self._on(device_id, ch, get)

    def _BL_GetData(self, device_id: int, ch: int, buffer: Any, infos: Any, target: Any) -> int:
        def get(channel: SP200Channel) -> None:
            if not buffer or not infos or not target:
                raise TechniqueRefused(INVALID_PARAMETERS, "BL_GetData needs the buffer, TDataInfos and TCurrentValues")
            values = channel.current_values()  # before the rows: no row can follow a STOP read here
            chunk = channel.get_data(BUFFER_WORDS)
            words = _chunk_words(chunk) if chunk is not None else []
            buffer.contents[: len(words)] = words
            infos[0] = TDataInfos() if chunk is None else TDataInfos(
                NbRows=len(chunk.rows), NbCols=len(words) // len(chunk.rows), TechniqueIndex=chunk.technique_index,
                TechniqueID=chunk.technique_id, ProcessIndex=chunk.process_index, loop=chunk.loop,
                StartTime=chunk.start_time_s,
            )
            _fill_values(target.contents, values, max(values.mem_filled_bytes - 4 * len(words), 0))

        return self._on(device_id, ch, get)

    def _BL_ConvertNumericIntoSingle(self, word: int, value: Any) -> int:
        if not value:
            raise TechniqueRefused(INVALID_PARAMETERS, "BL_ConvertNumericIntoSingle needs a float pointer")
        value[0] = struct.unpack("<f", struct.pack("<I", word))[0]
        return OK

