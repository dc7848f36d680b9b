"""Networks: encoder, automodulator and classic decoders, and the latent-to-layer assignment helpers."""

from automod_cli.models.automodulator import Automodulator
from automod_cli.models.decoder import AutomodulatorDecoder, ClassicDecoder, build_decoder
from automod_cli.models.encoder import Encoder

__all__ = ["Automodulator", "AutomodulatorDecoder", "ClassicDecoder", "Encoder", "build_decoder"]
