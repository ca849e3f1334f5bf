"""Dead letters from the outbox relay: rows that could not be published to Kafka."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("indexing", "0008_blueprint_revisions")]

    operations = [
        migrations.AddField(
            model_name="deadletter",
            name="source",
            field=models.CharField(choices=[("consumer", "Indexing consumer (read from Kafka)"),
                                            ("outbox", "Outbox relay (never reached Kafka)")],
                                   default="consumer", max_length=20),
        ),
        migrations.AlterField(model_name="deadletter", name="partition",
                              field=models.IntegerField(blank=True, null=True)),
        migrations.AlterField(model_name="deadletter", name="offset",
                              field=models.BigIntegerField(blank=True, null=True)),
        migrations.AlterField(
            model_name="deadletter",
            name="reason",
            field=models.CharField(choices=[
                ("undecodable", "Not JSON / not UTF-8"), ("schema_invalid", "Fails the event schema"),
                ("mapping_rejected", "Rejected by the index mapping"), ("too_large", "Too large (document or Kafka message)"),
                ("build_failed", "Document builder failed"),
                ("retries_exhausted", "Transient errors outlasted the retries"),
                ("unserialisable", "Outbox row cannot be encoded as an event"),
                ("rejected", "Other permanent rejection")], max_length=40),
        ),
    ]
