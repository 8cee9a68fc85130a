"""Verify the JWS that Netlify sends in ``X-Webhook-Signature`` (standard library only).

Netlify signs each notification with the hook's "JWS secret token": a compact JWT, HS256, with
the claims ``iss`` = ``"netlify"`` and ``sha256`` = lowercase hex SHA-256 of the raw body. We
verify it by hand rather than ship a JWT library: the function folder is stdlib + boto3 only,
and accepting exactly one algorithm is simpler to get right than configuring a general verifier.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re

ALGORITHM = "HS256"
ISSUER = "netlify"
# Netlify documents no ``exp``; when a token carries ``exp``/``nbf`` anyway we honour them, with
# this much allowance for clock skew.
LEEWAY_SECONDS = 60

_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")
_HEX_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


def _b64url_decode(segment: str) -> bytes:
    if not _BASE64URL.fullmatch(segment) or len(segment) % 4 == 1:
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _json_object(segment: str) -> dict:
    value = json.loads(_b64url_decode(segment))
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def signature_problem(signature: str | None, secret: str, body: bytes, now: float) -> str | None:
    """Why ``signature`` does not prove Netlify sent ``body``, or None when it does.

    The reasons are safe to log: they never quote the signature, the secret or the body.
    The order matters: nothing in the payload is trusted before the HMAC has been checked.
    """
    if not signature:
        return "no X-Webhook-Signature header"
    parts = signature.strip().split(".")
    if len(parts) != 3:
        return "the signature is not a compact JWS"
    header_segment, payload_segment, mac_segment = parts
    try:
        header = _json_object(header_segment)
        mac = _b64url_decode(mac_segment)
        _b64url_decode(payload_segment)  # decoded again below, once the MAC holds
    except (ValueError, RecursionError, binascii.Error):
        return "the signature is not a well-formed JWS"
    # Only HS256: "none" or an asymmetric algorithm must never be accepted with our secret.
    if header.get("alg") != ALGORITHM:
        return f"the signature's algorithm is not {ALGORITHM}"
    signing_input = f"{header_segment}.{payload_segment}".encode("ascii")
    expected = hmac.new(secret.encode("utf-8"), signing_input, hashlib.sha256).digest()
    if not hmac.compare_digest(mac, expected):
        return "the signature does not match the JWS secret"
    try:
        claims = _json_object(payload_segment)
    except (ValueError, RecursionError, binascii.Error):
        return "the signature's claims are not a JSON object"
    if claims.get("iss") != ISSUER:
        return f"the signature's issuer is not {ISSUER!r}"
    claimed = claims.get("sha256")
    digest = hashlib.sha256(body).hexdigest()
    if not isinstance(claimed, str) or not _HEX_SHA256.fullmatch(claimed):
        return "the signature's sha256 claim is not a SHA-256 hex digest"
    if not hmac.compare_digest(claimed.lower().encode("ascii"), digest.encode("ascii")):
        return "the signature's sha256 claim does not match the body"
    expires = claims.get("exp")
    if expires is not None and (not _is_number(expires) or now > expires + LEEWAY_SECONDS):
        return "the signature has expired"
    not_before = claims.get("nbf")
    if not_before is not None and (not _is_number(not_before) or now < not_before - LEEWAY_SECONDS):
        return "the signature is not valid yet"
    return None
