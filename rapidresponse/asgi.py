"""ASGI entry point: the console's server-sent events need an async server."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rapidresponse.settings")

application = get_asgi_application()

# Load the language models now, not during the first text message of a surge.
from intake import language  # noqa: E402

language.warm_up()
