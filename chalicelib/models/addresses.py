"""Email addresses as handlers hold them: one, or several separated by commas."""

from __future__ import annotations


def check_email(value: str) -> str:
    """A syntactically valid address, kept as given (no deliverability lookup)."""
    from email_validator import EmailNotValidError, validate_email

    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"is not a valid email address: {exc}") from None
    return value


MAX_EMAIL_ADDRESSES = 10
"""Addresses one email handler mails (each confirmed apart): a team, not a mailing list."""


def comma_separated(value: str) -> list[str]:
    """The non-empty items of a comma-separated setting, stripped, in order."""
    return [part.strip() for part in value.split(",") if part.strip()]


def email_addresses(value: str) -> list[str]:
    """The addresses in an `EmailAddresses` value, in order, without repeats (any case)."""
    seen: set[str] = set()
    addresses = []
    for address in comma_separated(value):
        if address.lower() not in seen:
            seen.add(address.lower())
            addresses.append(address)
    return addresses


def check_email_list(value: str) -> str:
    addresses = email_addresses(value)
    if not addresses:
        raise ValueError("give at least one email address")
    if len(addresses) > MAX_EMAIL_ADDRESSES:
        raise ValueError(f"give at most {MAX_EMAIL_ADDRESSES} addresses")
    for address in addresses:
        check_email(address)
    return ", ".join(addresses)
