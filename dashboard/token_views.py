"""API tokens page: a user creates named tokens with an expiry (the secret is shown once),
sees when each was last used, and revokes them."""

from django import forms
from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from accounts import tokens


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What uses it, e.g. “nightly backfill script”.")
    days = forms.TypedChoiceField(label="Expires in", coerce=int, initial=30,
                                  choices=[(d, f"{d} day{'s' if d > 1 else ''}") for d in tokens.EXPIRY_DAYS])


@require_http_methods(["GET", "POST"])
def token_list(request):
    form = TokenForm(request.POST or None)
    new_secret = None
    if request.method == "POST" and form.is_valid():
        token, new_secret = tokens.create(request.user, form.cleaned_data["name"], form.cleaned_data["days"])
        form = TokenForm()
    response = render(request, "dashboard/tokens.html", {"form": form, "tokens": tokens.owned_by(request.user),
                                                         "new_secret": new_secret})
    if new_secret:
        # The secret is on this page only: keep it out of every cache.
        response["Cache-Control"] = "no-store"
    return response


@require_POST
def token_revoke(request, key):
    if tokens.revoke(request.user, key):
        messages.success(request, "Token revoked: clients using it now get 401.")
    else:
        messages.error(request, "No such token.")
    return redirect("dashboard:tokens")
