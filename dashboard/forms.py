from django import forms

from indexing.core.limits import MAX_IDS_PER_REQUEST
from indexing.models import DeadLetter, IndexBlueprint


class DeadLetterFilterForm(forms.Form):
    blueprint = forms.ChoiceField(required=False, label="Index")
    reason = forms.ChoiceField(required=False, choices=[("", "any reason")] + list(DeadLetter.Reason.choices))
    source = forms.ChoiceField(required=False, choices=[("", "any source")] + list(DeadLetter.Source.choices))
    status = forms.ChoiceField(required=False, initial=DeadLetter.Status.PENDING,
                               choices=[("", "any status")] + list(DeadLetter.Status.choices))
    since = forms.DateTimeField(required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    until = forms.DateTimeField(required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        names = IndexBlueprint.objects.values_list("name", flat=True)
        self.fields["blueprint"].choices = [("", "any index")] + [(n, n) for n in names]

    def filters(self) -> dict:
        if not self.is_valid():
            return {"status": DeadLetter.Status.PENDING}
        return {k: v for k, v in self.cleaned_data.items()}


class DeadLetterActionForm(forms.Form):
    ACTIONS = [("replay", "Replay"), ("discard", "Discard")]
    action = forms.ChoiceField(choices=ACTIONS)
    scope = forms.ChoiceField(choices=[("selected", "selected"), ("matching", "all matching the filters")])
    ids = forms.TypedMultipleChoiceField(required=False, coerce=int, choices=())
    confirmed = forms.BooleanField(required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Any id is acceptable here; the queryset restricts to pending letters.
        self.fields["ids"].choices = [(v, v) for v in self.data.getlist("ids")] if hasattr(self.data, "getlist") else []

    def clean(self):
        data = super().clean()
        if len(data.get("ids") or ()) > MAX_IDS_PER_REQUEST:
            raise forms.ValidationError(f"Select at most {MAX_IDS_PER_REQUEST} dead letters, or choose “all matching”.")
        if data.get("scope") == "selected" and not data.get("ids"):
            raise forms.ValidationError("Select at least one dead letter, or choose “all matching”.")
        return data
