"""WSGI entry point (management commands and WSGI servers; the product serves ASGI)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rapidresponse.settings")

application = get_wsgi_application()
