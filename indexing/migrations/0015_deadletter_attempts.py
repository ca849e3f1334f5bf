# One dead letter per message: attempts and last_seen_at, duplicates merged, then unique constraints.

import django.utils.timezone
from django.db import migrations, models
from django.db.models import Count, Max, Min


def merge_duplicates(apps, schema_editor):
    """Rows stored twice for one message (a replay after an offset rewind) become one: the first row,
    with attempts = how many there were and the last one's time; pending if any of them was."""
    DeadLetter = apps.get_model("indexing", "DeadLetter")
    DeadLetter.objects.update(last_seen_at=models.F("created_at"))
    identities = [
        (DeadLetter.objects.filter(source="consumer", offset__gte=0, blueprint__isnull=False),
         ["blueprint", "topic", "partition", "offset", "target_index"]),
        (DeadLetter.objects.filter(source="outbox"), ["event_id"]),
    ]
    for rows, fields in identities:
        groups = (rows.values(*fields).annotate(n=Count("id"), first=Min("id"), last=Max("created_at"))
                  .filter(n__gt=1).order_by())
        for group in groups:
            same = rows.filter(**{f: group[f] for f in fields})
            pending = same.filter(status="pending").exists()
            update = {"attempts": group["n"], "last_seen_at": group["last"]}
            if pending:
                update.update(status="pending", resolved_at=None, resolved_by="")
            same.filter(id=group["first"]).update(**update)
            same.exclude(id=group["first"]).delete()
    # The updates queued deferred foreign-key checks; PostgreSQL creates no index on a table with any pending.
    schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")


class Migration(migrations.Migration):

    dependencies = [
        ('indexing', '0014_deadletter_unknown_aggregate'),
    ]

    operations = [
        migrations.AddField(
            model_name='deadletter',
            name='attempts',
            field=models.PositiveIntegerField(default=1),
        ),
        migrations.AddField(
            model_name='deadletter',
            name='last_seen_at',
            field=models.DateTimeField(default=django.utils.timezone.now),
        ),
        migrations.RunPython(merge_duplicates, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name='deadletter',
            constraint=models.UniqueConstraint(condition=models.Q(('offset__gte', 0), ('source', 'consumer')), fields=('blueprint', 'topic', 'partition', 'offset', 'target_index'), name='uniq_deadletter_message'),
        ),
        migrations.AddConstraint(
            model_name='deadletter',
            constraint=models.UniqueConstraint(condition=models.Q(('source', 'outbox')), fields=('event_id',), name='uniq_deadletter_outbox_event'),
        ),
    ]
