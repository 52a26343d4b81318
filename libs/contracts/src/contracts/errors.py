"""The one exception raised for anything that does not match a contract."""

from typing import Self

import msgspec


class ContractError(ValueError):
    """Input that does not match a contract; the message says what is wrong and where."""

    @classmethod
    def from_msgspec(cls, what: str, exc: msgspec.DecodeError) -> Self:
        """Wrap a msgspec error, naming the document root when msgspec gives no location."""
        detail = str(exc)
        if isinstance(exc, msgspec.ValidationError) and " - at `" not in detail:
            detail += " - at `$`"
        return cls(f"invalid {what}: {detail}")
