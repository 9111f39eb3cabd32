"""NVIDIA Triton (kserve-tritonserver, v2): a model repository ``<name>/1/model.*``.

The storageUri is the repository; the Triton model name, used in prediction paths, is the name
of the model's folder in it. A ``config.pbtxt`` names the backend and, where the MLflow
signature names every tensor, the inputs and outputs; Triton completes the rest itself.
"""

from __future__ import annotations

from kserve_predictor.engines.base import Engine, LayoutPlan, rename_tree
from kserve_predictor.engines.tensorflow import savedmodel_reason
from kserve_predictor.model.mlmodel import KERAS, ONNX, TENSORFLOW, ModelInfo, TensorSpec

# numpy dtype names (as MLflow writes them) → Triton data types.
_TRITON_TYPES = {
    "bool": "TYPE_BOOL",
    "uint8": "TYPE_UINT8",
    "uint16": "TYPE_UINT16",
    "uint32": "TYPE_UINT32",
    "uint64": "TYPE_UINT64",
    "int8": "TYPE_INT8",
    "int16": "TYPE_INT16",
    "int32": "TYPE_INT32",
    "int64": "TYPE_INT64",
    "float16": "TYPE_FP16",
    "float32": "TYPE_FP32",
    "float64": "TYPE_FP64",
    "str": "TYPE_STRING",
    "object": "TYPE_STRING",
    "bytes": "TYPE_STRING",
}


class TritonEngine(Engine):
    name = "triton"
    model_format = "triton"
    legacy_field = "triton"
    protocol = "v2"
    runtime = "kserve-tritonserver"
    formats = (ONNX, TENSORFLOW, KERAS)

    def unsupported_reason(self, info: ModelInfo) -> str | None:
        return super().unsupported_reason(info) or savedmodel_reason(self, info)

    def plan(self, info: ModelInfo, model_name: str) -> LayoutPlan:
        if info.format == ONNX:
            copies = {f"{model_name}/1/model.onnx": info.model_path}
            platform = "onnxruntime_onnx"
        else:
            assert info.savedmodel_dir is not None
            copies = rename_tree(
                list(info.files), info.savedmodel_dir, f"{model_name}/1/model.savedmodel"
            )
            platform = "tensorflow_savedmodel"
        config = triton_config(model_name, platform, info.inputs, info.outputs)
        return LayoutPlan(copies=copies, generated={f"{model_name}/config.pbtxt": config.encode()})


def triton_config(
    name: str, platform: str, inputs: tuple[TensorSpec, ...], outputs: tuple[TensorSpec, ...]
) -> str:
    """A Triton ModelConfig in protobuf text format.

    max_batch_size is 0 so that dims are the full tensor shapes MLflow recorded (batch included).
    """
    lines = [f'name: "{name}"', f'platform: "{platform}"', "max_batch_size: 0"]
    for section, specs in (("input", inputs), ("output", outputs)):
        if _describable(specs):
            lines.append(f"{section} [")
            lines.append(",\n".join(_tensor_entry(spec) for spec in specs))
            lines.append("]")
    return "\n".join(lines) + "\n"


def _describable(specs: tuple[TensorSpec, ...]) -> bool:
    """Only a signature naming every tensor, with known types, can be written down for Triton."""
    return bool(specs) and all(
        s.name and s.shape is not None and s.dtype in _TRITON_TYPES for s in specs
    )


def _tensor_entry(spec: TensorSpec) -> str:
    assert spec.shape is not None
    dims = ", ".join(str(d) for d in spec.shape)
    return (
        "  {\n"
        f'    name: "{spec.name}"\n'
        f"    data_type: {_TRITON_TYPES[spec.dtype]}\n"
        f"    dims: [ {dims} ]\n"
        "  }"
    )
