"""What an API token's owner sees of it. The token itself is knox's AuthToken, which keeps
only a digest of the secret; this row adds the name it was given and when it was last used."""

from django.db import models
from knox.models import AuthToken


class TokenLabel(models.Model):
    token = models.OneToOneField(AuthToken, on_delete=models.CASCADE, primary_key=True, related_name="label")
    name = models.CharField(max_length=100)
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return self.name
