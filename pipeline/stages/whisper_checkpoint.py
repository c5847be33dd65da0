"""Turn a CTranslate2 Whisper model folder into an openai-whisper checkpoint, once.

faster-whisper and openai-whisper run the same network; only the file layout differs.
The bundled ``tiny.en`` ships as CTranslate2 (``model.bin`` + ``config.json``), so the
openai-whisper engine reads those weights back instead of downloading its own copy:

- ``model.bin`` is the binary written by ``ctranslate2/specs/model_spec.py`` (``_serialize``):
  a version, the spec name and revision, then (name, shape, dtype, bytes) per variable, then
  aliases. Weights may be float32/float16/bfloat16, or int8/int16 with a ``<name>_scale``.
- Self-attention stores query/key/value fused in ``linear_0``; cross-attention stores the
  query in ``linear_0`` and key/value fused in ``linear_1``. openai-whisper has separate
  ``query``/``key``/``value`` layers and its key has no bias (CTranslate2 stores zeros).
- ``config.json`` lists the alignment heads (layer, head) that make word timestamps work;
  they are kept in the checkpoint and applied by ``load``.

The checkpoint is written to a temp file and renamed, so a crash never leaves half a file
and concurrent workers at worst convert twice.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import re
import struct
import tempfile
from pathlib import Path

import numpy as np

from pipeline.errors import BadInput

# Order of CTranslate2's DataType enum (include/ctranslate2/types.h).
_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16, 5: "bfloat16"}


def read_ct2_variables(model_bin: Path) -> dict[str, np.ndarray]:
    """Every variable of a CTranslate2 ``model.bin``, aliases resolved, quantized weights kept as stored."""
    data = memoryview(Path(model_bin).read_bytes())
    pos = 0

    def take(fmt: str):
        nonlocal pos
        value = struct.unpack_from(fmt, data, pos)[0]
        pos += struct.calcsize(fmt)
        return value

    def text() -> str:
        nonlocal pos
        length = take("H")   # includes the trailing NUL
        value = bytes(data[pos:pos + length - 1]).decode("utf-8")
        pos += length
        return value

    version = take("I")
    if version < 5:
        raise BadInput(f"'{model_bin}' uses CTranslate2 binary version {version}, which is too old to convert.")
    spec_name, _revision = text(), take("I")
    if spec_name != "WhisperSpec":
        raise BadInput(f"'{model_bin}' is a {spec_name} model, not a Whisper model.")
    variables: dict[str, np.ndarray] = {}
    for _ in range(take("I")):
        name = text()
        shape = [take("I") for _ in range(take("B"))]
        dtype, size = _DTYPES[take("B")], take("I")
        raw = data[pos:pos + size]
        pos += size
        if dtype == "bfloat16":   # no numpy bfloat16: widen to float32 bit patterns
            array = (np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)
        else:
            array = np.frombuffer(raw, dtype=dtype)
        variables[name] = array.reshape(shape)
    for _ in range(take("I")):
        alias, target = text(), text()
        variables[alias] = variables[target]
    return variables


def _weight(variables: dict[str, np.ndarray], name: str) -> np.ndarray:
    """A variable as float, dequantized with its ``_scale`` when stored as int8/int16."""
    value = variables[name]
    scale = variables.get(f"{name}_scale")
    if value.dtype in (np.int8, np.int16):
        if scale is None:
            raise BadInput(f"The model's '{name}' is quantized but has no scale; the model file is damaged.")
        value = value.astype(np.float32)
        scale = scale.astype(np.float32)
        if scale.ndim == 0:                       # int16: one scale for the tensor
            return value / scale
        return value / scale.reshape((-1,) + (1,) * (value.ndim - 1))   # int8: one scale per output row
    return value if value.dtype == np.float16 else value.astype(np.float32)


def _layers(variables: dict, stack: str) -> int:
    return len({name.split("/")[1] for name in variables if re.match(rf"{stack}/layer_\d+/", name)})


def _heads(variables: dict, stack: str, width: int) -> int:
    value = variables.get(f"{stack}/num_heads")
    return int(value) if value is not None else width // 64


def _state_dict(variables: dict[str, np.ndarray]) -> tuple[dict, dict[str, np.ndarray]]:
    """(openai-whisper dims, state_dict as numpy arrays)."""
    w = lambda name: _weight(variables, name)   # noqa: E731 - local shorthand
    state: dict[str, np.ndarray] = {}

    def linear(target: str, source: str) -> None:
        state[f"{target}.weight"] = w(f"{source}/weight")
        if f"{source}/bias" in variables:
            state[f"{target}.bias"] = w(f"{source}/bias")

    def norm(target: str, source: str) -> None:
        state[f"{target}.weight"], state[f"{target}.bias"] = w(f"{source}/gamma"), w(f"{source}/beta")

    def split(target: str, source: str, names: tuple[str, ...]) -> None:
        """Fused projections -> one linear per name; openai-whisper's key has no bias."""
        weights = np.split(w(f"{source}/weight"), len(names))
        biases = np.split(w(f"{source}/bias"), len(names))
        for name, weight, bias in zip(names, weights, biases, strict=True):
            state[f"{target}.{name}.weight"] = weight
            if name != "key":
                state[f"{target}.{name}.bias"] = bias

    def self_attention(dst: str, src: str) -> None:
        split(f"{dst}.attn", f"{src}/self_attention/linear_0", ("query", "key", "value"))
        linear(f"{dst}.attn.out", f"{src}/self_attention/linear_1")
        norm(f"{dst}.attn_ln", f"{src}/self_attention/layer_norm")

    def mlp(dst: str, src: str) -> None:
        linear(f"{dst}.mlp.0", f"{src}/ffn/linear_0")
        linear(f"{dst}.mlp.2", f"{src}/ffn/linear_1")
        norm(f"{dst}.mlp_ln", f"{src}/ffn/layer_norm")

    state["encoder.conv1.weight"], state["encoder.conv1.bias"] = w("encoder/conv1/weight"), w("encoder/conv1/bias")
    state["encoder.conv2.weight"], state["encoder.conv2.bias"] = w("encoder/conv2/weight"), w("encoder/conv2/bias")
    state["encoder.positional_embedding"] = w("encoder/position_encodings/encodings")
    for i in range(_layers(variables, "encoder")):
        src, dst = f"encoder/layer_{i}", f"encoder.blocks.{i}"
        self_attention(dst, src)
        mlp(dst, src)
    norm("encoder.ln_post", "encoder/layer_norm")

    state["decoder.token_embedding.weight"] = w("decoder/embeddings/weight")
    state["decoder.positional_embedding"] = w("decoder/position_encodings/encodings")
    for i in range(_layers(variables, "decoder")):
        src, dst = f"decoder/layer_{i}", f"decoder.blocks.{i}"
        self_attention(dst, src)
        linear(f"{dst}.cross_attn.query", f"{src}/attention/linear_0")
        split(f"{dst}.cross_attn", f"{src}/attention/linear_1", ("key", "value"))
        linear(f"{dst}.cross_attn.out", f"{src}/attention/linear_2")
        norm(f"{dst}.cross_attn_ln", f"{src}/attention/layer_norm")
        mlp(dst, src)
    norm("decoder.ln", "decoder/layer_norm")

    audio_width = state["encoder.conv1.weight"].shape[0]
    text_width = state["decoder.token_embedding.weight"].shape[1]
    dims = {"n_mels": state["encoder.conv1.weight"].shape[1],
            "n_audio_ctx": state["encoder.positional_embedding"].shape[0],
            "n_audio_state": audio_width,
            "n_audio_head": _heads(variables, "encoder", audio_width),
            "n_audio_layer": _layers(variables, "encoder"),
            "n_vocab": state["decoder.token_embedding.weight"].shape[0],
            "n_text_ctx": state["decoder.positional_embedding"].shape[0],
            "n_text_state": text_width,
            "n_text_head": _heads(variables, "decoder", text_width),
            "n_text_layer": _layers(variables, "decoder")}
    return dims, state


def alignment_heads_dump(heads: list[list[int]], layers: int, heads_per_layer: int) -> bytes:
    """(layer, head) pairs in the base85(gzip(bool mask)) form ``Whisper.set_alignment_heads`` reads."""
    mask = np.zeros((layers, heads_per_layer), dtype=bool)
    for layer, head in heads:
        mask[layer, head] = True
    return base64.b85encode(gzip.compress(mask.tobytes(), mtime=0))


def convert(model_dir: Path, output: Path) -> Path:
    """Write the openai-whisper checkpoint for the CTranslate2 model in ``model_dir`` to ``output``."""
    import torch

    model_dir = Path(model_dir)
    if not (model_dir / "model.bin").is_file():
        raise BadInput(f"'{model_dir}' is not a CTranslate2 Whisper model folder (model.bin is missing).")
    dims, state = _state_dict(read_ct2_variables(model_dir / "model.bin"))
    config_file = model_dir / "config.json"
    config = json.loads(config_file.read_text(encoding="utf-8")) if config_file.is_file() else {}
    heads = config.get("alignment_heads") or [[layer, head] for layer in range(dims["n_text_layer"] // 2,
                                                                               dims["n_text_layer"])
                                              for head in range(dims["n_text_head"])]
    checkpoint = {"dims": dims,
                  "model_state_dict": {name: torch.from_numpy(np.array(value))   # a writable copy
                                       for name, value in state.items()},
                  "alignment_heads": alignment_heads_dump(heads, dims["n_text_layer"], dims["n_text_head"]),
                  "source": str(model_dir)}
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".partial", dir=output.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            torch.save(checkpoint, out)
        os.replace(tmp, output)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return output


def cached_checkpoint(model_dir: Path, cache_dir: Path, name: str | None = None) -> Path:
    """The checkpoint for ``model_dir`` under ``cache_dir``, converting it on first use only.

    The file name is ``name`` (e.g. ``tiny.en``) or the folder's name plus a short hash of
    its path, so two custom models with the same folder name do not collide.
    """
    model_dir = Path(model_dir).resolve()
    if name is None:
        name = f"{model_dir.name}-{hashlib.sha1(str(model_dir).encode()).hexdigest()[:8]}"
    target = Path(cache_dir) / f"{name}.pt"
    if not target.is_file():
        convert(model_dir, target)
    return target


def load(checkpoint: Path, device: str = "cpu"):
    """An openai-whisper model from a converted checkpoint, with the alignment heads applied."""
    import torch
    import whisper

    data = torch.load(checkpoint, map_location=device, weights_only=True)
    model = whisper.model.Whisper(whisper.model.ModelDimensions(**data["dims"]))
    model.load_state_dict({name: value.float() for name, value in data["model_state_dict"].items()})
    if data.get("alignment_heads"):
        model.set_alignment_heads(data["alignment_heads"])
    return model.to(device)
