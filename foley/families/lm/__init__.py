"""The autoregressive token family: a MusicGen-style transformer decoder over our codec's tokens.

- :mod:`.delay` — MusicGen's delay interleaving of codebook streams (and its inverse);
- :mod:`.model` — :class:`~foley.families.lm.model.TokenLM`: codec + MiniLM + ``MusicgenForCausalLM``
  composed as transformers' ``MusicgenForConditionalGeneration``; folders, text conditioning, sampling;
- :mod:`.stream` — token frames as they are sampled (a background ``generate`` and a streamer);
- :mod:`.pipeline` — :class:`~foley.families.lm.pipeline.LMGenerator` (generate, continue, long-form,
  streaming);
- :mod:`.train` — ``foley train lm``: pre-tokenise with the codec once, train the decoder, export;
- :mod:`.control` — ``foley train control --from starter-lm``: curve and melody conditioning (conditioning frames
  + LoRA), used by the generator for requests with target curves and for the ``melody`` task.
"""

from ...family import Family

FAMILY = Family(
    name="lm", generator="foley.families.lm.pipeline:LMGenerator", train="foley.families.lm.train:train_lm",
    finetune="foley.families.lm.finetune:finetune_lm", control="foley.families.lm.control:train_control",
    control_recipe="recipes/starter-lm-control.toml",
    stages=("tokens", "lm", "export"), recipe="recipes/starter-lm.toml",
    description="token language model over neural-codec tokens (MusicGen style); streams")
