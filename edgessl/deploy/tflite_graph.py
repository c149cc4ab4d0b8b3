"""Read a .tflite flatbuffer (ops, tensors, buffers) with the schema TFLite Micro ships; inline
external buffers so that TFLite Micro sees every weight."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

DTYPE_BYTES = {"INT8": 1, "UINT8": 1, "INT16": 2, "INT32": 4, "FLOAT32": 4, "INT64": 8, "BOOL": 1, "FLOAT16": 2}


def _schema():
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

    return fb


def _enum_names(enum: type) -> dict[int, str]:
    return {v: k for k, v in vars(enum).items() if not k.startswith("_") and isinstance(v, int)}


@dataclass
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    constant: bool
    scale: float | None
    zero_point: int | None

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape or (1,))) * DTYPE_BYTES.get(self.dtype, 4)


@dataclass
class Op:
    index: int
    name: str
    inputs: list[int]
    outputs: list[int]
    output_name: str


@dataclass
class TFLiteGraph:
    tensors: list[Tensor]
    ops: list[Op]
    inputs: list[int]
    outputs: list[int]
    size_bytes: int

    @classmethod
    def load(cls, path: Path) -> TFLiteGraph:
        fb = _schema()
        raw = Path(path).read_bytes()
        model = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(bytearray(raw), 0))
        sg = model.subgraphs[0]
        types, builtins = _enum_names(fb.TensorType), _enum_names(fb.BuiltinOperator)
        tensors = []
        for i, t in enumerate(sg.tensors):
            buf = model.buffers[t.buffer] if t.buffer < len(model.buffers) else None
            constant = buf is not None and ((buf.data is not None and len(buf.data) > 0) or bool(buf.offset))
            q = t.quantization
            scale = float(q.scale[0]) if q is not None and q.scale is not None and len(q.scale) else None
            zp = int(q.zeroPoint[0]) if q is not None and q.zeroPoint is not None and len(q.zeroPoint) else None
            shape = tuple(int(s) for s in t.shape) if t.shape is not None else ()
            tensors.append(Tensor(i, t.name.decode(), shape, types.get(t.type, str(t.type)), constant, scale, zp))
        ops = []
        for j, op in enumerate(sg.operators):
            code = model.operatorCodes[op.opcodeIndex]
            name = builtins.get(max(code.builtinCode, code.deprecatedBuiltinCode), "CUSTOM")
            if name == "CUSTOM" and code.customCode:
                name = f"CUSTOM({code.customCode.decode()})"
            outs = [int(o) for o in op.outputs]
            ops.append(Op(j, name, [int(i) for i in op.inputs], outs, tensors[outs[0]].name if outs else ""))
        return cls(tensors, ops, [int(i) for i in sg.inputs], [int(o) for o in sg.outputs], len(raw))


def inline_buffers(path: Path) -> int:
    """Rewrite the file with every weight inside the flatbuffer; returns how many were moved.

    ai-edge-quantizer stores large weights after the flatbuffer (buffer offset/size). TFLite Micro
    does not read those: it runs, but with weights in the arena and wrong outputs (measured here:
    arena 1.18 MB instead of 254 KB, and outputs that disagree with LiteRT)."""
    import flatbuffers

    fb = _schema()
    raw = Path(path).read_bytes()
    model = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(bytearray(raw), 0))
    moved = 0
    for b in model.buffers:
        if b.offset:
            b.data = np.frombuffer(raw[b.offset : b.offset + b.size], dtype=np.uint8)
            b.offset, b.size = 0, 0
            moved += 1
    if moved:
        builder = flatbuffers.Builder(len(raw) + 1024)
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
        Path(path).write_bytes(bytes(builder.Output()))
    return moved
