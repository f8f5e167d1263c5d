"""Settings for the test suite: the real settings, with a throwaway secret and a fast password hasher."""

import os

os.environ.setdefault("SECRET_KEY", "tests-only-not-secret")
os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")

from .settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}  # noqa: F405
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]

import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

# Uploaded import files and rejected-row files go to a throwaway folder.
MEDIA_ROOT = tempfile.mkdtemp(prefix="crm-test-media-")
CAMPAIGN_MESSAGE_FILE = Path(MEDIA_ROOT) / "messages.jsonl"
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
AXES_ENABLED = False  # the test client logs in without a request; tests/config/test_security.py turns it on
