"""EClib's ctypes layer against a fake library: prototypes, structure layouts, pointers filled, errors mapped.

The fake stands in for EClib64.dll: each function checks every argument against the argtypes EClib set, the way
ctypes converts them (``argtype.from_param``), records the call, and fills the out-structures through the pointers
it is given. Expected prototypes, layouts and error codes are transcribed here from BioLogic's C header
(BLFunctions.h / BLStructs.h, ``#pragma pack(4)``), not taken from labctl's tables.
"""

from __future__ import annotations

import ctypes
import struct
from ctypes import POINTER, c_bool, c_char_p, c_float, c_int32, c_uint8, c_uint32, sizeof
from typing import ClassVar

import pytest

from labctl.drivers.biologic import techniques
from labctl.drivers.biologic.data import OCVRow, parse
from labctl.drivers.biologic.eclib import (
    EClib,
    EClibError,
    TChannelInfos,
    TCurrentValues,
    TDataBuffer,
    TDataInfos,
    TDeviceInfos,
    TEccParam,
    TEccParams,
    THardwareConf,
)

I32P, U32P, U8P = POINTER(c_int32), POINTER(c_uint32), POINTER(c_uint8)
EXPECTED = {  # BLFunctions.h: int ID, uint8 channel, bool, TEccParams_t by value
    "BL_GetLibVersion": (c_int32, [c_char_p, U32P]),
    "BL_GetErrorMsg": (c_int32, [c_int32, c_char_p, U32P]),
    "BL_Connect": (c_int32, [c_char_p, c_uint8, I32P, POINTER(TDeviceInfos)]),
    "BL_Disconnect": (c_int32, [c_int32]),
    "BL_TestConnection": (c_int32, [c_int32]),
    "BL_LoadFirmware": (c_int32, [c_int32, U8P, I32P, c_uint8, c_bool, c_bool, c_char_p, c_char_p]),
    "BL_IsChannelPlugged": (c_bool, [c_int32, c_uint8]),
    "BL_GetChannelsPlugged": (c_int32, [c_int32, U8P, c_uint8]),
    "BL_GetChannelInfos": (c_int32, [c_int32, c_uint8, POINTER(TChannelInfos)]),
    "BL_GetMessage": (c_int32, [c_int32, c_uint8, c_char_p, U32P]),
    "BL_GetHardConf": (c_int32, [c_int32, c_uint8, POINTER(THardwareConf)]),
    "BL_SetHardConf": (c_int32, [c_int32, c_uint8, THardwareConf]),
    "BL_LoadTechnique": (c_int32, [c_int32, c_uint8, c_char_p, TEccParams, c_bool, c_bool, c_bool]),
    "BL_DefineBoolParameter": (c_int32, [c_char_p, c_bool, c_int32, POINTER(TEccParam)]),
    "BL_DefineSglParameter": (c_int32, [c_char_p, c_float, c_int32, POINTER(TEccParam)]),
    "BL_DefineIntParameter": (c_int32, [c_char_p, c_int32, c_int32, POINTER(TEccParam)]),
    "BL_UpdateParameters": (c_int32, [c_int32, c_uint8, c_int32, TEccParams, c_char_p]),
    "BL_StartChannel": (c_int32, [c_int32, c_uint8]),
    "BL_StartChannels": (c_int32, [c_int32, U8P, I32P, c_uint8]),
    "BL_StopChannel": (c_int32, [c_int32, c_uint8]),
    "BL_StopChannels": (c_int32, [c_int32, U8P, I32P, c_uint8]),
    "BL_GetCurrentValues": (c_int32, [c_int32, c_uint8, POINTER(TCurrentValues)]),
    "BL_GetData": (c_int32, [c_int32, c_uint8, POINTER(TDataBuffer), POINTER(TDataInfos), POINTER(TCurrentValues)]),
    "BL_ConvertNumericIntoSingle": (c_int32, [c_uint32, POINTER(c_float)]),
    "BL_GetOptErr": (c_int32, [c_int32, c_uint8, I32P, I32P]),
}

# TErrorCodes_e of BLStructs.h
CODES = {
    -1: "ERR_GEN_NOTCONNECTED", -2: "ERR_GEN_CONNECTIONINPROGRESS", -3: "ERR_GEN_CHANNELNOTPLUGGED",
    -4: "ERR_GEN_INVALIDPARAMETERS", -5: "ERR_GEN_FILENOTEXISTS", -6: "ERR_GEN_FUNCTIONFAILED",
    -7: "ERR_GEN_NOCHANNELSELECTED", -8: "ERR_GEN_INVALIDCONF", -9: "ERR_GEN_ECLAB_LOADED",
    -10: "ERR_GEN_LIBNOTCORRECTLYLOADED", -11: "ERR_GEN_USBLIBRARYERROR", -12: "ERR_GEN_FUNCTIONINPROGRESS",
    -13: "ERR_GEN_CHANNEL_RUNNING", -14: "ERR_GEN_DEVICE_NOTALLOWED", -15: "ERR_GEN_UPDATEPARAMETERS",
    -101: "ERR_INSTR_VMEERROR", -102: "ERR_INSTR_TOOMANYDATA", -103: "ERR_INSTR_RESPNOTPOSSIBLE",
    -104: "ERR_INSTR_RESPERROR", -105: "ERR_INSTR_MSGSIZEERROR",
    -200: "ERR_COMM_COMMFAILED", -201: "ERR_COMM_CONNECTIONFAILED", -202: "ERR_COMM_WAITINGACK",
    -203: "ERR_COMM_INVALIDIPADDRESS", -204: "ERR_COMM_ALLOCMEMFAILED", -205: "ERR_COMM_LOADFIRMWAREFAILED",
    -206: "ERR_COMM_INCOMPATIBLESERVER", -207: "ERR_COMM_MAXCONNREACHED",
    -300: "ERR_FIRM_FIRMFILENOTEXISTS", -301: "ERR_FIRM_FIRMFILEACCESSFAILED", -302: "ERR_FIRM_FIRMINVALIDFILE",
    -303: "ERR_FIRM_FIRMLOADINGFAILED", -304: "ERR_FIRM_XILFILENOTEXISTS", -305: "ERR_FIRM_XILFILEACCESSFAILED",
    -306: "ERR_FIRM_XILINVALIDFILE", -307: "ERR_FIRM_XILLOADINGFAILED", -308: "ERR_FIRM_FIRMWARENOTLOADED",
    -309: "ERR_FIRM_FIRMWAREINCOMPATIBLE",
    -400: "ERR_TECH_ECCFILENOTEXISTS", -401: "ERR_TECH_INCOMPATIBLEECC", -402: "ERR_TECH_ECCFILECORRUPTED",
    -403: "ERR_TECH_LOADTECHNIQUEFAILED", -404: "ERR_TECH_DATACORRUPTED", -405: "ERR_TECH_MEMFULL",
}  # fmt: skip


class FakeFunction:
    def __init__(self, name: str, impl) -> None:
        self.name, self.impl, self.calls = name, impl, []
        self.argtypes: list | None = None
        self.restype = None

    def __call__(self, *args):
        assert self.argtypes is not None, f"{self.name} called before its prototype was set"
        assert len(args) == len(self.argtypes), f"{self.name}: {len(args)} arguments for {len(self.argtypes)}"
        for argtype, arg in zip(self.argtypes, args, strict=True):
            argtype.from_param(arg)  # TypeError where ctypes would refuse the argument
        self.calls.append(args)
        return self.impl(*args)


class FakeEClib:
    """Every BL_* call of EXPECTED, succeeding unless given an implementation (which returns the code)."""

    names: ClassVar = list(EXPECTED)

    def __init__(self, **impls) -> None:
        for name in self.names:
            setattr(self, name, FakeFunction(name, impls.get(name, lambda *args: 0)))


def f32_bits(value: float) -> int:
    return struct.unpack("<i", struct.pack("<f", value))[0]


def define(param_type: int):
    """A BL_Define*Parameter that fills the TEccParam it is pointed at, as the DLL does."""

    def impl(label, value, index, p_param):
        p = p_param.contents
        p.ParamStr, p.ParamType, p.ParamIndex = label, param_type, index
        p.ParamVal = f32_bits(value) if param_type == 2 else int(value)
        return 0

    return impl


def test_structure_layouts_are_the_headers_with_pack_4():
    assert sizeof(TDeviceInfos) == 11 * 4
    assert sizeof(TChannelInfos) == 21 * 4 and TChannelInfos.FloatFormat.offset == 76
    assert sizeof(TCurrentValues) == 19 * 4
    assert (TCurrentValues.TimeBase.offset, TCurrentValues.I.offset, TCurrentValues.OptPos.offset) == (8, 40, 72)
    assert sizeof(TDataInfos) == 40 and TDataInfos.StartTime.offset == 28 and TDataInfos.MuxPad.offset == 36
    assert sizeof(TEccParam) == 76 and TEccParam.ParamVal.offset == 68
    assert TEccParams.pParams.offset == 4 and sizeof(TEccParams) == 4 + sizeof(ctypes.c_void_p)
    assert sizeof(THardwareConf) == 8 and sizeof(TDataBuffer) == 4000


def test_prototypes_are_set_on_the_library():
    lib = FakeEClib()
    EClib(lib)
    for name, (restype, argtypes) in EXPECTED.items():
        function = getattr(lib, name)
        assert (function.restype, function.argtypes) == (restype, argtypes), name


def test_a_library_without_a_call_is_refused():
    lib = FakeEClib()
    del lib.BL_GetData
    with pytest.raises(AttributeError, match="has no BL_GetData; load EClib64.dll"):
        EClib(lib)


def test_connect_fills_id_and_device_infos():
    def connect(address, timeout, p_id, p_infos):
        p_id.contents.value = 3
        p_infos.contents.DeviceCode, p_infos.contents.NumberOfChannels = 21, 1
        return 0

    lib = FakeEClib(BL_Connect=connect)
    device_id, infos = EClib(lib).connect("192.168.1.2", 5)
    assert device_id == 3 and (infos.DeviceCode, infos.NumberOfChannels) == (21, 1)
    assert lib.BL_Connect.calls[0][:2] == (b"192.168.1.2", 5)


@pytest.mark.parametrize("timeout", [0, 256, 2.5, True])
def test_connect_timeout_is_whole_seconds_of_a_uint8(timeout):
    lib = FakeEClib()
    with pytest.raises(ValueError, match="BL_Connect takes whole seconds 1..255"):
        EClib(lib).connect("USB0", timeout)
    assert lib.BL_Connect.calls == []


@pytest.mark.parametrize("channel", [-1, 16, True, 1.0])
def test_channels_are_0_based_and_checked_before_the_call(channel):
    lib = FakeEClib()
    with pytest.raises(ValueError, match=r"EClib channels are 0-based, 0..15 \(physical channel 1 is 0\)"):
        EClib(lib).start_channel(1, channel)
    assert lib.BL_StartChannel.calls == []


def test_load_firmware_selects_channels_and_checks_each_result():
    def load(device_id, flags, results, length, gauge, force, kernel, fpga):
        results[1] = -303  # the selected channel 1 failed; channel 5 (not selected) reports junk
        results[5] = -1
        return 0

    lib = FakeEClib(BL_LoadFirmware=load)
    with pytest.raises(EClibError, match=r"BL_LoadFirmware \(channel 1\) failed with EClib error -303") as error:
        EClib(lib).load_firmware(7, [0, 1])
    assert error.value.call == "BL_LoadFirmware (channel 1)" and error.value.code == -303
    device_id, flags, _results, length, gauge, force, kernel, fpga = lib.BL_LoadFirmware.calls[0]
    assert (device_id, list(flags), length) == (7, [1, 1] + [0] * 14, 16)
    assert (gauge, force, kernel, fpga) == (False, True, b"kernel4.bin", b"Vmp_iv_0395_aa.xlx")


def test_channels_plugged_reads_the_flag_array():
    def plugged(device_id, flags, size):
        flags[0] = flags[3] = 1
        return 0

    assert EClib(FakeEClib(BL_GetChannelsPlugged=plugged)).channels_plugged(1) == [0, 3]
    assert EClib(FakeEClib(BL_IsChannelPlugged=lambda device_id, ch: ch == 2)).is_channel_plugged(1, 2) is True


def test_text_calls_return_the_strings_written_into_their_buffers():
    def version(buffer, p_size):
        buffer.value, p_size.contents.value = b"6.04", 4
        return 0

    def message(device_id, ch, buffer, p_size):
        assert p_size.contents.value == 4096
        buffer.value = b"technique started"
        return 0

    eclib = EClib(FakeEClib(BL_GetLibVersion=version, BL_GetMessage=message))
    assert eclib.lib_version() == "6.04" and eclib.message(1, 0) == "technique started"


def test_ocv_params_are_defined_by_the_dll_and_loaded_by_value():
    loaded = []

    def load(device_id, ch, path, params, first, last, display):
        rows = [(params.pParams[i].ParamStr, params.pParams[i].ParamType, params.pParams[i].ParamVal,
                 params.pParams[i].ParamIndex) for i in range(params.len)]  # fmt: skip
        loaded.append((device_id, ch, path, rows, first, last, display))
        return 0

    lib = FakeEClib(BL_DefineBoolParameter=define(1), BL_DefineSglParameter=define(2), BL_DefineIntParameter=define(0),
                    BL_LoadTechnique=load)  # fmt: skip
    eclib = EClib(lib)
    eclib.load_technique(2, 0, r"C:\EC-Lab Development Package\ocv4.ecc", techniques.ocv(10.0, record_dt_s=0.5),
                         last=False)
    assert loaded == [(2, 0, b"C:\\EC-Lab Development Package\\ocv4.ecc", [
        (b"Rest_time_T", 2, 0x41200000, 0),  # 10.0 = 2^3·1.25
        (b"Record_every_dE", 2, 0, 0),
        (b"Record_every_dT", 2, 0x3F000000, 0),  # 0.5
        (b"E_Range", 0, 2, 0),
        (b"Bandwidth", 0, 5, 0),
    ], True, False, False)]  # fmt: skip
    assert [call[0] for call in lib.BL_DefineSglParameter.calls] == [b"Rest_time_T", b"Record_every_dE", b"Record_every_dT"]


def test_a_boolean_parameter_goes_through_bl_define_bool_parameter():
    lib = FakeEClib(BL_DefineBoolParameter=define(1))
    param = EClib(lib).define_bool("vs_initial", True, 3)
    assert (param.ParamStr, param.ParamType, param.ParamVal, param.ParamIndex) == (b"vs_initial", 1, 1, 3)
    assert lib.BL_DefineBoolParameter.calls[0][:3] == (b"vs_initial", True, 3)


@pytest.mark.parametrize("label", ["", "x" * 64, "Rest_time_Té"])
def test_labels_must_fit_param_str(label):
    with pytest.raises(ValueError, match="label"):
        EClib(FakeEClib()).define_single(label, 1.0)


def test_non_ascii_ecc_path_is_refused():
    with pytest.raises(ValueError, match="ecc_path .* non-ASCII characters"):
        EClib(FakeEClib()).load_technique(1, 0, r"C:\Données\ocv4.ecc", [])


def test_get_data_fills_block_and_current_values():
    """Two OCV rows written by the fake: 3.5 V at 1 s and 2.5 V at 2 s after a 100 s start (time base 2^-15 s)."""

    def get_data(device_id, ch, p_buffer, p_infos, p_values):
        for i, word in enumerate([0, 0x8000, 0x40600000, 0, 0x10000, 0x40200000]):
            p_buffer.contents[i] = word
        p_buffer.contents[6] = 0xDEADBEEF  # beyond NbRows·NbCols: not data
        info = p_infos.contents
        info.NbRows, info.NbCols, info.TechniqueID, info.ProcessIndex = 2, 3, 100, 0
        info.TechniqueIndex, info.loop, info.StartTime = 1, 4, 100.0
        p_values.contents.TimeBase, p_values.contents.State = 2.0**-15, 1
        return 0

    block, values = EClib(FakeEClib(BL_GetData=get_data)).get_data(0, 0)
    assert block.words == (0, 0x8000, 0x40600000, 0, 0x10000, 0x40200000)
    assert (block.technique_id, block.process_index, block.technique_index, block.loop) == (100, 0, 1, 4)
    assert values.State == 1
    assert parse(block) == [OCVRow(101.0, 3.5), OCVRow(102.0, 2.5)]


def test_get_data_with_an_impossible_row_count_is_refused_by_the_parser():
    def get_data(device_id, ch, p_buffer, p_infos, p_values):
        p_infos.contents.NbRows, p_infos.contents.NbCols, p_infos.contents.TechniqueID = 400, 3, 100
        return 0

    block, _ = EClib(FakeEClib(BL_GetData=get_data)).get_data(0, 0)
    assert len(block.words) == 1000
    with pytest.raises(ValueError, match="400 rows × 3 columns do not fit the 1000-word buffer"):
        parse(block)


def test_convert_numeric_into_single_and_current_values():
    def convert(word, p_value):
        p_value.contents.value = struct.unpack("<f", struct.pack("<I", word))[0]
        return 0

    def current(device_id, ch, p_values):
        p_values.contents.Ewe, p_values.contents.I = 3.5, -0.5
        return 0

    eclib = EClib(FakeEClib(BL_ConvertNumericIntoSingle=convert, BL_GetCurrentValues=current))
    assert eclib.convert_numeric_into_single(0x40200000) == 2.5
    values = eclib.current_values(1, 0)
    assert (values.Ewe, values.I) == (3.5, -0.5)


def test_hardware_configuration_and_option_errors():
    def get_conf(device_id, ch, p_conf):
        p_conf.contents.Conn, p_conf.contents.Ground = 1, 1
        return 0

    def opt_err(device_id, ch, p_code, p_position):
        p_code.contents.value, p_position.contents.value = 101, 2
        return 0

    lib = FakeEClib(BL_GetHardConf=get_conf, BL_GetOptErr=opt_err)
    eclib = EClib(lib)
    conf = eclib.hard_conf(1, 0)
    assert (conf.Conn, conf.Ground) == (1, 1)
    eclib.set_hard_conf(1, 0, 0, 1)
    sent = lib.BL_SetHardConf.calls[0][2]
    assert isinstance(sent, THardwareConf) and (sent.Conn, sent.Ground) == (0, 1)
    assert eclib.opt_err(1, 0) == (101, 2)


def test_start_and_stop_several_channels():
    def stop(device_id, flags, results, length):
        results[2] = -13
        return 0

    lib = FakeEClib(BL_StopChannels=stop)
    EClib(lib).start_channels(1, [0, 2])
    assert list(lib.BL_StartChannels.calls[0][1])[:3] == [1, 0, 1]
    with pytest.raises(EClibError, match=r"BL_StopChannels \(channel 2\).*already used"):
        EClib(lib).stop_channels(1, [2])
    with pytest.raises(ValueError, match="no channel selected"):
        EClib(lib).stop_channels(1, [])


@pytest.mark.parametrize(("code", "name"), sorted(CODES.items()))
def test_every_error_code_is_mapped(code, name):
    lib = FakeEClib(BL_StartChannel=lambda device_id, ch: code)
    with pytest.raises(EClibError) as error:
        EClib(lib).start_channel(1, 0)
    e = error.value
    assert (e.call, e.code) == ("BL_StartChannel", code)
    assert f"({name})" in e.meaning and not e.meaning.startswith(f"({name})")  # the meaning in words, then the name
    assert str(e).startswith(f"BL_StartChannel failed with EClib error {code}: ")


def test_incompatible_ecc_says_which_files_the_sp200_needs():
    lib = FakeEClib(BL_LoadTechnique=lambda *args: -401)
    with pytest.raises(EClibError, match=r"ECC file not compatible with the channel firmware .*\*4\.ecc") as error:
        EClib(lib).load_technique(1, 0, "ocv.ecc", [])
    assert error.value.call == "BL_LoadTechnique"


def test_an_undocumented_code_is_still_an_error():
    lib = FakeEClib(BL_Disconnect=lambda device_id: -999)
    with pytest.raises(EClibError, match="-999: a code EClib's header does not list") as error:
        EClib(lib).disconnect(1)
    assert error.value.code == -999
