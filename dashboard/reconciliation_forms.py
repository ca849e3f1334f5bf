from django import forms

from indexing import reconciliation
from indexing.core.limits import MAX_ROWS_PER_SECOND
from indexing.models import IndexBlueprint


class ReconciliationStartForm(forms.Form):
    MODES = [("dry_run", "Dry run (classify only)"), ("repair", "Repair (re-emit through the outbox, purge expired tombstones)")]

    blueprint = forms.ChoiceField(label="Index")
    mode = forms.ChoiceField(choices=MODES, initial="dry_run")
    rows_per_second = forms.IntegerField(required=False, min_value=1, max_value=MAX_ROWS_PER_SECOND,
                                         label="Rows/s (empty = unthrottled)")
    confirmed = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["blueprint"].choices = [(n, n) for n in IndexBlueprint.objects.values_list("name", flat=True)]

    def clean(self):
        data = super().clean()
        name = data.get("blueprint")
        if name:
            blueprint = IndexBlueprint.objects.get(name=name)
            try:
                data["index"] = reconciliation.target_index(blueprint)
            except reconciliation.ReconciliationError as exc:
                raise forms.ValidationError({"blueprint": str(exc)}) from exc
            if reconciliation.is_running(data["index"]):
                raise forms.ValidationError({"blueprint": f"a reconciliation of {data['index']} is already running"})
            data["blueprint_obj"] = blueprint
        return data

    @property
    def dry_run(self) -> bool:
        return self.cleaned_data["mode"] != "repair"
