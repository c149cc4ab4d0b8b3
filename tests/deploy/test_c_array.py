import shutil
import subprocess

import pytest

from edgessl.deploy.exporters.c_array import arena_margin_bytes, export_c_array
from edgessl.deploy.tflite_graph import TFLiteGraph


def test_header_carries_shape_quantisation_classes_and_arena(int8_model, tmp_path):
    source, header = export_c_array(int8_model, tmp_path, ["cat", 'say "hi"'], arena_bytes=123456, name="net")
    h = header.read_text()
    graph = TFLiteGraph.load(int8_model)
    inp = graph.tensors[graph.inputs[0]]
    assert "#define NET_INPUT_HEIGHT 32" in h and "#define NET_INPUT_CHANNELS 3" in h and "NHWC" in h
    assert f"#define NET_INPUT_ZERO_POINT ({inp.zero_point})" in h
    assert "#define NET_ARENA_SIZE 123456" in h and "#define NET_NUM_CLASSES 2" in h
    assert f"#define NET_ARENA_MARGIN {arena_margin_bytes(graph)}" in h and "persistent in 7 ops" in h
    c = source.read_text()
    assert "_Alignas(16) const unsigned char g_net[]" in c and f"g_net_len = {int8_model.stat().st_size};" in c
    assert '"say \\"hi\\""' in c


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="needs gcc-arm-none-eabi (installed by .ci/run)")
def test_array_compiles_for_cortex_m7_and_rodata_holds_the_model_bytes(int8_model, tmp_path):
    source, _ = export_c_array(int8_model, tmp_path, ["a", "b"], arena_bytes=1024, name="net")
    obj = tmp_path / "net.o"
    subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m7", "-mthumb", "-O2", "-std=c11", "-c", str(source), "-o", str(obj)], check=True)
    rodata = tmp_path / "rodata.bin"
    subprocess.run(["arm-none-eabi-objcopy", "-O", "binary", "--only-section=.rodata", str(obj), str(rodata)], check=True)
    blob, model = rodata.read_bytes(), int8_model.read_bytes()
    offset = blob.find(model)
    assert offset >= 0 and offset % 16 == 0
    headers = subprocess.run(["arm-none-eabi-objdump", "-h", str(obj)], capture_output=True, text=True, check=True).stdout
    assert ".rodata" in headers
