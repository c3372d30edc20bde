"""ASGI entry point: the console's server-sent events need an async server."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rapidresponse.settings")

application = get_asgi_application()
