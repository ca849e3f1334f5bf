"""Blueprint revisions: every existing blueprint gets its current definition recorded as
its first revision, and its indices built from that definition point at it."""

import hashlib
import json

import django.db.models.deletion
from django.db import migrations, models


def record_current_definitions(apps, schema_editor):
    IndexBlueprint = apps.get_model("indexing", "IndexBlueprint")
    BlueprintRevision = apps.get_model("indexing", "BlueprintRevision")
    PhysicalIndex = apps.get_model("indexing", "PhysicalIndex")
    for blueprint in IndexBlueprint.objects.all():
        definition = {
            "settings": blueprint.settings, "mappings": blueprint.mappings, "event_schema": blueprint.event_schema,
            "document_builder": blueprint.document_builder, "delete_mode": blueprint.delete_mode, "golden_queries": [],
        }
        digest = hashlib.sha256(json.dumps(definition, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
        revision = BlueprintRevision.objects.create(
            blueprint=blueprint, number=blueprint.revision, content_hash=digest, definition=definition,
            created_by="migration", reason="definition in use when revisions were introduced")
        PhysicalIndex.objects.filter(blueprint=blueprint, blueprint_revision=blueprint.revision).update(revision=revision)


class Migration(migrations.Migration):

    dependencies = [
        ('indexing', '0007_alert_subjects'),
    ]

    operations = [
        migrations.AddField(
            model_name='indexblueprint',
            name='registered_as',
            field=models.CharField(blank=True, help_text="Registered definition (files next to the owning app's code) it follows.", max_length=100),
        ),
        migrations.AlterField(
            model_name='indexblueprint',
            name='revision',
            field=models.PositiveIntegerField(default=1, help_text='Number of the revision the live index was built from.'),
        ),
        migrations.CreateModel(
            name='BlueprintRevision',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('number', models.PositiveIntegerField()),
                ('content_hash', models.CharField(max_length=64)),
                ('definition', models.JSONField()),
                ('created_by', models.CharField(max_length=150)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('reason', models.TextField()),
                ('validation', models.JSONField(blank=True, default=dict, help_text='What the scratch-index validation checked.')),
                ('blueprint', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='revisions', to='indexing.indexblueprint')),
            ],
            options={
                'ordering': ['blueprint', '-number'],
            },
        ),
        migrations.AddField(
            model_name='physicalindex',
            name='revision',
            field=models.ForeignKey(blank=True, help_text='The revision this index was built from.', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='indices', to='indexing.blueprintrevision'),
        ),
        migrations.AddConstraint(
            model_name='blueprintrevision',
            constraint=models.UniqueConstraint(fields=('blueprint', 'number'), name='uniq_blueprint_revision'),
        ),
        migrations.RunPython(record_current_definitions, migrations.RunPython.noop),
    ]
