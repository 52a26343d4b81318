"""The VAPID key in each form an environment variable or a Secret may hold it: all name the
same application server key browsers subscribe with."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from workers.push_web import application_server_key, load_vapid_key

KEY = ec.generate_private_key(ec.SECP256R1())


def pem(private_format: serialization.PrivateFormat) -> str:
    return KEY.private_bytes(
        serialization.Encoding.PEM, private_format, serialization.NoEncryption()
    ).decode()


RAW = base64.urlsafe_b64encode(KEY.private_numbers().private_value.to_bytes(32, "big"))
FORMS = {
    "raw base64url (web-push generate-vapid-keys)": RAW.decode().rstrip("="),
    "PKCS#8 PEM, as a file holds it": pem(serialization.PrivateFormat.PKCS8),
    "PKCS#8 PEM on one line, breaks written \\n": pem(serialization.PrivateFormat.PKCS8)
    .strip()
    .replace("\n", "\\n"),
    "SEC1 PEM (openssl ecparam -genkey) on one line": pem(
        serialization.PrivateFormat.TraditionalOpenSSL
    ).replace("\n", "\\n"),
}


@pytest.mark.parametrize("form", FORMS)
def test_every_form_of_the_key_is_the_same_key(form: str) -> None:
    public = KEY.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    expected = base64.urlsafe_b64encode(public).decode().rstrip("=")
    assert application_server_key(load_vapid_key(FORMS[form])) == expected
