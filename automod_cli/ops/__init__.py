"""Image operations on a trained automodulator: the Python API behind `automod mix | sample | edit |
interpolate | reconstruct | encode`. Functions take a model and tensors and return tensors (images in [-1, 1]).

    from automod_cli.ops import load_model, load_images, encode, mix, scale_range
    model = load_model("runs/demo")    # or open_model(...): the model with its checkpoint's metadata and provenance
    x = load_images(["a.png", "b.png"], model.resolution)
    z = encode(model, x)
    image = mix(model, z[:1], z[1:], scale_range(model, "coarse"))   # B's coarse scales on A
"""

from automod_cli.locate import OpenedModel, find_checkpoint, load_model, open_model
from automod_cli.models.latents import slerp
from automod_cli.ops.codes import (
    Codes,
    Latents,
    Sources,
    check_sources,
    encode_files,
    find_sources,
    input_images,
    load_codes,
    model_identity,
    save_codes,
    source_latents,
)
from automod_cli.ops.editing import (
    attribute_vector,
    edit,
    edit_latents,
    latent_difference,
    load_vector,
    save_vector,
)
from automod_cli.ops.figures import captioned, captioned_grid
from automod_cli.ops.inputs import (
    Inputs,
    builtin_images,
    check_inputs,
    image_paths,
    load_image,
    load_images,
    load_inputs,
)
from automod_cli.ops.interpolation import interpolate, interpolate_grid, snake_order, write_gif
from automod_cli.ops.mixing import mix, mix_grid, mix_latents
from automod_cli.ops.reconstruct import (
    Reconstructed,
    decode,
    encode,
    nonfinite_tensors,
    reconstruct,
    reconstruct_files,
    side_by_side,
)
from automod_cli.ops.sampling import conditional_latents, conditional_sample, sample
from automod_cli.ops.scales import describe, require_mixing, scale_label, scale_range

__all__ = [
    "Codes",
    "Inputs",
    "Latents",
    "OpenedModel",
    "Reconstructed",
    "Sources",
    "attribute_vector",
    "builtin_images",
    "captioned",
    "captioned_grid",
    "check_inputs",
    "check_sources",
    "conditional_latents",
    "conditional_sample",
    "decode",
    "describe",
    "edit",
    "edit_latents",
    "encode",
    "encode_files",
    "find_checkpoint",
    "find_sources",
    "image_paths",
    "input_images",
    "interpolate",
    "interpolate_grid",
    "latent_difference",
    "load_codes",
    "load_image",
    "load_images",
    "load_inputs",
    "load_model",
    "load_vector",
    "mix",
    "mix_grid",
    "mix_latents",
    "model_identity",
    "nonfinite_tensors",
    "open_model",
    "reconstruct",
    "reconstruct_files",
    "require_mixing",
    "sample",
    "save_codes",
    "save_vector",
    "scale_label",
    "scale_range",
    "side_by_side",
    "slerp",
    "snake_order",
    "source_latents",
    "write_gif",
]
