"""The tiny trained latent-diffusion model for the server, study and browser tests.

One training run per session, shared with the model and CLI tests (``tests/ldm_tiny.py``).
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_model(tiny_ldm) -> Path:
    """Folder of the session's tiny LDM model."""
    return tiny_ldm[1]
