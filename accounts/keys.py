"""Re-encrypting allauth's MFA secrets under the current field key (``rotate_keys``).

allauth keeps a TOTP secret (``data["secret"]``) and the recovery codes' seed
(``data["seed"]``) inside a JSON column, encrypted by ``accounts.adapters.MFAAdapter``;
they are not ``EncryptedTextField`` columns, so ``rotate_keys`` asks this module."""

from __future__ import annotations

from dataclasses import dataclass, field

from allauth.mfa.models import Authenticator
from django.db import transaction

from accounts.adapters import SECRET_CONTEXT
from core import crypto

SECRET_NAMES = {Authenticator.Type.TOTP: "secret", Authenticator.Type.RECOVERY_CODES: "seed"}


@dataclass
class MFARotation:
    changed: int = 0
    undecryptable: list[int] = field(default_factory=list)


def rotate_mfa_secrets(*, current: str, dry_run: bool) -> MFARotation:
    """Seal every MFA secret not under ``current`` again under it; a row edited
    meanwhile (its token changed) is left as it is now."""
    result = MFARotation()
    rows = Authenticator.objects.filter(type__in=list(SECRET_NAMES)).order_by("pk")
    for authenticator in rows.iterator():
        name = SECRET_NAMES[Authenticator.Type(authenticator.type)]
        token = authenticator.data.get(name)
        if not isinstance(token, str):
            continue
        try:
            if crypto.token_key_id(token) == current:
                continue
            plaintext = crypto.decrypt(token, context=SECRET_CONTEXT)
        except crypto.DecryptionError:
            result.undecryptable.append(authenticator.pk)
            continue
        result.changed += 1
        if dry_run:
            continue
        with transaction.atomic():
            row = Authenticator.objects.select_for_update().get(pk=authenticator.pk)
            if row.data.get(name) == token:
                sealed = crypto.encrypt(plaintext, context=SECRET_CONTEXT)
                row.data = {**row.data, name: sealed}
                row.save(update_fields=["data"])
    return result
