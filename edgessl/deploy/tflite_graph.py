"""Read a .tflite flatbuffer (ops, tensors, buffers) with the schema TFLite Micro ships; inline
external buffers so that TFLite Micro sees every weight."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DTYPE_BYTES = {"INT8": 1, "UINT8": 1, "INT16": 2, "INT32": 4, "FLOAT32": 4, "INT64": 8, "BOOL": 1, "FLOAT16": 2}


def _schema():
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

    return fb


def _object_model(raw: bytes) -> object:
    """The flatbuffer as the schema's mutable object API (ModelT)."""
    fb = _schema()
    return fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(bytearray(raw), 0))


def _pack(model: object, size_hint: int) -> bytes:
    import flatbuffers

    builder = flatbuffers.Builder(size_hint + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


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
    options: dict[str, int] = field(default_factory=dict)  # the builtin options' integer fields (strides, padding, ...)


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
        model = _object_model(raw)
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
            options = {k: int(v) for k, v in vars(op.builtinOptions).items() if isinstance(v, int)} if op.builtinOptions is not None else {}
            ops.append(Op(j, name, [int(i) for i in op.inputs], outs, tensors[outs[0]].name if outs else "", options))
        return cls(tensors, ops, [int(i) for i in sg.inputs], [int(o) for o in sg.outputs], len(raw))


def _inline(model: object, raw: bytes) -> int:
    """Move buffers stored after the flatbuffer (offset/size) into it; returns how many moved."""
    moved = 0
    for b in model.buffers:
        if b.offset:
            b.data = np.frombuffer(raw[b.offset : b.offset + b.size], dtype=np.uint8)
            b.offset, b.size = 0, 0
            moved += 1
    return moved


def inline_buffers(path: Path) -> int:
    """Rewrite the file with every weight inside the flatbuffer; returns how many were moved.

    ai-edge-quantizer stores large weights after the flatbuffer (buffer offset/size). TFLite Micro
    does not read those: it runs, but with weights in the arena and wrong outputs (measured here:
    arena 1.18 MB instead of 254 KB, and outputs that disagree with LiteRT)."""
    raw = Path(path).read_bytes()
    model = _object_model(raw)
    moved = _inline(model, raw)
    if moved:
        Path(path).write_bytes(_pack(model, len(raw)))
    return moved


MICRO_ALIGN = 16  # the schema's force_align for buffer data; Python's object API packs at 4


@dataclass
class MicroShrink:
    """What `write_micro_flatbuffer` removed, in bytes of the source file."""

    source_bytes: int
    micro_bytes: int
    tensor_names: int
    zero_points: int

    def note(self) -> str:
        return (
            f"{self.source_bytes:,} -> {self.micro_bytes:,} B: tensor names stripped ({self.tensor_names:,} B), per-channel"
            f" weight zero points collapsed to one ({self.zero_points:,} B; TFLite Micro reads one as all-zero), "
            f"buffers {MICRO_ALIGN}-byte aligned"
        )


class _AlignedBuffer:
    """Packs like BufferT, with the data vector at MICRO_ALIGN: the generated Python code ignores the schema's force_align."""

    def __init__(self, data: np.ndarray | None) -> None:
        self.data = data

    def Pack(self, builder: object) -> int:  # the object API's name: ModelT.Pack calls it
        fb = _schema()
        vector = None
        if self.data is not None and len(self.data):
            raw = np.asarray(self.data, dtype=np.uint8).tobytes()
            builder.StartVector(1, len(raw), MICRO_ALIGN)
            builder.head -= len(raw)
            builder.Bytes[builder.head : builder.head + len(raw)] = raw
            builder.vectorNumElems = len(raw)
            vector = builder.EndVector()
        fb.BufferStart(builder)
        if vector is not None:
            fb.BufferAddData(builder, vector)
        return fb.BufferEnd(builder)


def write_micro_flatbuffer(source: Path, path: Path) -> tuple[Path, MicroShrink, list[str]]:
    """The firmware's copy of an int8 model: same graph and weights, without what TFLite Micro never reads.

    Tensor names (all but the inputs' and outputs') go, and a per-channel zero-point array of zeros becomes a
    single 0, which TFLite Micro expands itself (micro_allocator: "zero point arrays for weights can be reduced to
    a single value"). LiteRT's full interpreter refuses the latter, so the host runtimes keep the source file.
    Returns the path, what was removed and the source's tensor names by index (for on-device debugging)."""
    raw = Path(source).read_bytes()
    model = _object_model(raw)
    names, name_bytes, zp_bytes = [], 0, 0
    for sg in model.subgraphs:
        keep = set(sg.inputs) | set(sg.outputs)
        for i, t in enumerate(sg.tensors):
            names.append(t.name.decode() if t.name else "")
            if i not in keep and t.name:
                name_bytes += len(t.name)
                t.name = b""
            q = t.quantization
            if q is not None and q.zeroPoint is not None and len(q.zeroPoint) > 1 and not np.any(q.zeroPoint):
                zp_bytes += 8 * (len(q.zeroPoint) - 1)
                q.zeroPoint = np.zeros(1, dtype=np.int64)
    _inline(model, raw)
    model.buffers = [_AlignedBuffer(b.data) for b in model.buffers]
    out = _pack(model, len(raw))
    Path(path).write_bytes(out)
    return Path(path), MicroShrink(len(raw), len(out), name_bytes, zp_bytes), names


def misaligned_buffers(path: Path, alignment: int = MICRO_ALIGN) -> int:
    """How many non-empty buffer data vectors do not start at a multiple of `alignment` in the file."""
    fb = _schema()
    model = fb.Model.GetRootAsModel(bytearray(Path(path).read_bytes()), 0)
    count = 0
    for i in range(model.BuffersLength()):
        buf = model.Buffers(i)
        if buf.DataLength() and buf._tab.Vector(buf._tab.Offset(4)) % alignment:
            count += 1
    return count
