"""Our shipped models as data: what a model folder cannot say about itself. Kept below the registry so that the
training layer (fine-tuning replays a starter's corpora) can read it without importing the registry."""

from __future__ import annotations

# Our shipped models: what a folder cannot say about itself (licence, description, recipe, the corpora it was
# trained on: `data`, manifests relative to the repository, as recipes/corpora.sh's DATA; fine-tuning replays them).
# Rates, channels, limits, tasks and defaults are read from the folder's foley.json by its family (``read_card``).
STARTER_CORPORA = ("corpora/synth/manifest.jsonl", "corpora/music/manifest.jsonl", "corpora/real_sfx/balanced.jsonl")
SHIPPED = {
    "starter": dict(
        family="ldm", weights="models/starter",
        licence="share-alike: trained partly on CC-BY-SA-3.0 and GPL-2+ game audio (models/starter/README.md)",
        description="Our latent-diffusion starter model: sound design textures, game SFX and music sketches.",
        recipe="recipes/starter-ldm.toml", data=STARTER_CORPORA),
    "starter-fast": dict(
        family="ldm", weights="models/starter-fast",
        licence="share-alike: the starter's (models/starter-fast/README.md)",
        description="The latent-diffusion starter distilled to 4 unguided steps (foley train distill); not "
                    "shipped yet: its first students stay below the 20-step quality (docs/models.md).",
        recipe="recipes/starter-fast.sh", data=STARTER_CORPORA),
    "starter-lm": dict(
        family="lm", weights="models/starter-lm",
        licence="share-alike: trained partly on CC-BY-SA-3.0 and GPL-2+ game audio (models/starter-lm/README.md)",
        description="Our token-LM starter: codec tokens predicted from text (MusicGen-style); streams.",
        recipe="recipes/starter-lm.toml", data=STARTER_CORPORA),
    "starter-masked": dict(
        family="masked", weights="models/starter-masked",
        licence="share-alike: trained partly on CC-BY-SA-3.0 and GPL-2+ game audio (models/starter-masked/README.md)",
        description="Our masked-token starter (VampNet/MAGNeT style): starter-lm's codec tokens in a few parallel "
                    "passes; inpaint, variations, loops.",
        recipe="recipes/starter-masked.sh"),
    "starter-wavegan": dict(
        family="wavegan", weights="models/starter-wavegan",
        licence="share-alike: trained partly on CC-BY-SA-3.0 and GPL-2+ game audio (models/starter-wavegan/README.md)",
        description="Our WaveGAN starter: 1 s one-shots (impacts, footsteps, drums, UI) in one forward pass; "
                    "latent interpolation.",
        recipe="recipes/starter-wavegan.sh"),
}
