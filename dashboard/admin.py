"""Django admin hardening: API tokens are credentials, so no admin page lists them.

DRF's authtoken registers a token admin that shows every user's key in clear: any
staff user with its view permission could act as anyone else through the API (and
approve their own cutover as a second admin). Tokens are shown once, to their
owner, when created; the admin only ever needs to revoke them, which deleting
the user or ``manage.py drf_create_token -r`` does.
"""

from django.contrib import admin
from rest_framework.authtoken.models import Token, TokenProxy

for model in (TokenProxy, Token):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
