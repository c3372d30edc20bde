"""Signals other apps listen to without messaging importing them."""

from django.dispatch import Signal

# Sent with ``phone_hash`` when a number opts out: a STOP keyword, or the provider
# telling us the recipient blocked us (Twilio 21610). Subscriptions stop on it.
opted_out = Signal()
