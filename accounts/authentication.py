"""``Authorization: Token <secret>`` for the API, with the token's last use remembered."""

from django.utils import timezone
from knox.auth import TokenAuthentication as KnoxTokenAuthentication

from .models import TokenLabel

# At most one write per token and minute, however busy the client is.
LAST_USED_RESOLUTION_S = 60


class TokenAuthentication(KnoxTokenAuthentication):
    def validate_user(self, auth_token):
        user, token = super().validate_user(auth_token)
        now = timezone.now()
        label = getattr(token, "label", None)
        if label is None:
            TokenLabel.objects.get_or_create(token=token, defaults={"name": "(unnamed)", "last_used_at": now})
        elif label.last_used_at is None or (now - label.last_used_at).total_seconds() > LAST_USED_RESOLUTION_S:
            TokenLabel.objects.filter(pk=token.pk).update(last_used_at=now)
        return user, token
