"""ASGI entry point: the console's server-sent events need an async server."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rapidresponse.settings")

django_application = get_asgi_application()

from core.asgi import BodySizeLimit, InFlight  # noqa: E402 - needs Django set up first
from intake import language  # noqa: E402
from messaging import spool  # noqa: E402

# The SMS webhook's backlog decides when texts go to the spool (messaging.spool).
application = InFlight(BodySizeLimit(django_application), paths=[spool.WEBHOOK_PATH])

# Load the language models now, not during the first text message of a surge.
language.warm_up()
# Messages spooled before a restart (the database was down) are stored now.
spool.start_replayer_if_pending()
