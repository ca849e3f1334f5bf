from django import forms

from backfills import selection as selections
from indexing.core.limits import MAX_ROWS_PER_SECOND
from indexing.models import BlueprintRevision, IndexBlueprint, PhysicalIndex


class BackfillForm(forms.Form):
    blueprint = forms.ModelChoiceField(queryset=IndexBlueprint.objects.filter(enabled=True), to_field_name="name")
    target_index = forms.ModelChoiceField(
        queryset=PhysicalIndex.objects.exclude(state=PhysicalIndex.State.RETIRED), to_field_name="name", required=False,
        empty_label="the live index", help_text="Any non-retired index of the blueprint.")
    kind = forms.ChoiceField(choices=[(k, k) for k in selections.KINDS], initial="all", label="Selection")
    start_id = forms.IntegerField(required=False)
    end_id = forms.IntegerField(required=False)
    ids = forms.CharField(required=False, help_text="Comma-separated ids.")
    tenant_id = forms.CharField(required=False)
    since = forms.DateTimeField(required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    until = forms.DateTimeField(required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    rows_per_second = forms.IntegerField(required=False, min_value=1, max_value=MAX_ROWS_PER_SECOND,
                                         help_text="Empty = unthrottled.")
    parallelism = forms.IntegerField(min_value=1, max_value=32, initial=2)

    def clean(self):
        data = super().clean()
        blueprint, target = data.get("blueprint"), data.get("target_index")
        if blueprint and target and target.blueprint_id != blueprint.pk:
            self.add_error("target_index", "This index belongs to another blueprint.")
        raw = {"kind": data.get("kind", "all")}
        for name in ("start_id", "end_id", "tenant_id"):
            if data.get(name) not in (None, ""):
                raw[name] = data[name]
        if data.get("ids"):
            raw["ids"] = [part.strip() for part in data["ids"].split(",") if part.strip()]
        for name in ("since", "until"):
            if data.get(name):
                raw[name] = data[name].isoformat()
        try:
            data["selection"] = selections.validate(raw)
        except selections.InvalidSelection as exc:
            self.add_error("kind", str(exc))
        return data


class ThrottleForm(forms.Form):
    rows_per_second = forms.IntegerField(required=False, min_value=1, max_value=MAX_ROWS_PER_SECOND,
                                         help_text="Empty = unthrottled.")


class CutoverRequestForm(forms.Form):
    blueprint = forms.ModelChoiceField(queryset=IndexBlueprint.objects.filter(enabled=True), to_field_name="name")
    rows_per_second = forms.IntegerField(required=False, min_value=1, max_value=MAX_ROWS_PER_SECOND, label="Backfill rows/s",
                                         help_text="Empty = unthrottled.")
    revision = forms.ModelChoiceField(queryset=BlueprintRevision.objects.all(), required=False,
                                      widget=forms.HiddenInput, help_text="Empty = the blueprint's newest revision.")

    def clean(self):
        data = super().clean()
        revision, blueprint = data.get("revision"), data.get("blueprint")
        if revision and blueprint and revision.blueprint_id != blueprint.pk:
            self.add_error("revision", "this revision belongs to another blueprint")
        return data
