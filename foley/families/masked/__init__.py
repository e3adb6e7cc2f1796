"""The masked-token family (VampNet / MAGNeT style): a bidirectional transformer over codec tokens.

- :mod:`.model` — :class:`~foley.families.masked.model.MaskedTransformer` (summed per-codebook embeddings per frame,
  ``torch.nn.TransformerDecoder`` without a causal mask, cross-attention on MiniLM states) and the folder;
- :mod:`.sampling` — MaskGIT iterative parallel decoding (cosine schedule, confidence re-masking, guidance);
- :mod:`.pipeline` — :class:`~foley.families.masked.pipeline.MaskedGenerator`: generate, continue, inpaint,
  variation, loop;
- :mod:`.train` — ``foley train masked``: the shared token stage, the masked-token solver, export (+ model card).
"""

from ...family import Family

FAMILY = Family(
    name="masked", generator="foley.families.masked.pipeline:MaskedGenerator",
    train="foley.families.masked.train:train_masked", stages=("tokens", "masked", "export"),
    recipe="recipes/starter-masked.toml",
    description="masked-token transformer over codec tokens (VampNet/MAGNeT style): a few parallel passes; "
                "inpaint, variations, loops")
