"""The latent-diffusion family (AudioLDM style): components, sampler, generator, training."""

from ...family import Family

FAMILY = Family(
    name="ldm", generator="foley.families.ldm.pipeline:LDMGenerator", train="foley.families.ldm.train:train_ldm",
    finetune="foley.families.ldm.finetune:finetune_ldm", distill="foley.families.ldm.distill:distill_ldm",
    control="foley.families.ldm.control:train_control",
    stages=("vae", "latents", "unet", "vocoder", "export"), default_stages=("vae", "latents", "unet", "export"),
    recipe="recipes/starter-ldm.toml",
    description="latent diffusion (AudioLDM style): VAE over stereo log-mels, text-conditioned UNet, vocoder")
